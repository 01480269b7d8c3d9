using System.Globalization;

namespace Unlearnable.LoadTest;

/// <summary>
/// A sidecar's memory as Linux reports it (/proc/PID/status): its peak, or its resident size
/// sampled through a run and averaged per window, so a long run shows whether memory stays flat.
/// </summary>
public sealed class ServerMemory : IAsyncDisposable
{
    readonly int _pid;
    readonly TimeSpan _window;
    readonly List<List<double>> _windows = [[]];
    readonly CancellationTokenSource _stop = new();
    readonly Task _sampling;

    ServerMemory(int pid, TimeSpan window, TimeSpan every)
    {
        (_pid, _window) = (pid, window);
        _sampling = SampleAsync(every);
    }

    /// <summary>Samples the resident size every <paramref name="every"/> until disposed; null where the process cannot be read.</summary>
    public static ServerMemory? Watch(int pid, TimeSpan window, TimeSpan every) => Read(pid, "VmRSS") is null ? null : new ServerMemory(pid, window, every);

    /// <summary>A field of the process's status in MiB: VmRSS (resident now) or VmHWM (peak); null off Linux or when it is gone.</summary>
    public static double? Read(int pid, string field)
    {
        var status = $"/proc/{pid}/status";
        if (!File.Exists(status)) return null;
        try
        {
            var line = File.ReadLines(status).FirstOrDefault(l => l.StartsWith(field + ":", StringComparison.Ordinal));
            return line is null ? null : long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) / 1024.0;
        }
        catch (IOException) { return null; }   // the process ended while being read
    }

    /// <summary>Mean resident MiB per window, in order (the last one may be partial).</summary>
    public IReadOnlyList<double> WindowMeans()
    {
        lock (_windows) return [.. _windows.Where(w => w.Count > 0).Select(w => Math.Round(w.Average(), 1))];
    }

    async Task SampleAsync(TimeSpan every)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        using var timer = new PeriodicTimer(every);
        do
        {
            if (Read(_pid, "VmRSS") is not { } now) return;
            lock (_windows)
            {
                while (clock.Elapsed >= _window * _windows.Count) _windows.Add([]);
                _windows[^1].Add(now);
            }
        }
        while (await timer.WaitForNextTickAsync(_stop.Token).AsTask().ContinueWith(t => !t.IsCanceled && t.Result, TaskScheduler.Default));
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        await _sampling;
        _stop.Dispose();
    }
}
