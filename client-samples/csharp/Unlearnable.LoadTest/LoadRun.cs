using System.Diagnostics;
using Grpc.Core;
using SkiaSharp;
using Unlearnable.ClientSample;

namespace Unlearnable.LoadTest;

/// <summary>How the users' posts ask to be scheduled (the sidecar's queue policy).</summary>
public enum PostPriority { Interactive, Bulk }

public sealed record LoadSettings(string Address, string? ApiKey, int Users, int PostsPerUser, TimeSpan Duration, int ImageSide,
    PostPriority Priority = PostPriority.Interactive, int? ServerPid = null, TimeSpan? MemoryWindow = null);

public sealed record LoadReport(int Users, int Completed, double Seconds, double PostsPerSecond, double P50Ms, double P95Ms, double P99Ms,
    double MeanQueuedMs, double MeanBatchSize, double P50OptimiseMs, IReadOnlyDictionary<string, int> ErrorsByStatus,
    IReadOnlyList<double>? ServerRssMiBByWindow = null)
{
    /// <summary>Growth of the server's mean resident memory from the second window (the first holds the warm-up) to the last.</summary>
    public double? MemoryGrowth => ServerRssMiBByWindow is { Count: >= 3 } w ? w[^1] / w[1] - 1 : null;

    /// <summary>What a post waits for besides its batch's optimisation (queue, codecs, transport): p50 latency over p50 optimisation.</summary>
    public double LatencyOverOptimise => P50Ms / P50OptimiseMs;

    public override string ToString() =>
        $"{Users} users: {Completed} posts in {Seconds:F1} s = {PostsPerSecond:F2} posts/s; latency p50 {P50Ms:F0} ms, p95 {P95Ms:F0} ms, p99 {P99Ms:F0} ms; " +
        $"mean queue {MeanQueuedMs:F0} ms, mean batch {MeanBatchSize:F1}; optimise p50 {P50OptimiseMs:F0} ms (latency {LatencyOverOptimise:F2}x); " +
        $"errors: {(ErrorsByStatus.Count == 0 ? "none" : string.Join(", ", ErrorsByStatus.Select(e => $"{e.Key} {e.Value}")))}" +
        (ServerRssMiBByWindow is { Count: > 0 } w ? $"; server RSS by window {string.Join(", ", w.Select(m => $"{m:F0}"))} MiB" +
            (MemoryGrowth is { } g ? $" (last over second {g:+0.0%;-0.0%})" : "") : "");
}

/// <summary>
/// N users, each on its own stream, posting one photo at a time (the next once the last is
/// back), until each has posted PostsPerUser or the duration ends. Loopback only: this is a
/// measuring tool, not a way to load someone else's server.
/// </summary>
public static class LoadRun
{
    public static async Task<LoadReport> RunAsync(LoadSettings settings, CancellationToken cancel = default)
    {
        var uri = new Uri(settings.Address);
        if (!uri.IsLoopback) throw new ArgumentException($"the load test only targets loopback addresses, not {uri.Host}");
        using var client = new SidecarClient(settings.Address, settings.ApiKey);
        var image = Photo(settings.ImageSide);
        var latencies = new List<double>();
        var queued = new List<double>();
        var batches = new List<int>();
        var optimised = new List<double>();
        var errors = new Dictionary<string, int>();
        var gate = new object();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        stop.CancelAfter(settings.Duration);
        var runId = Guid.NewGuid().ToString("N")[..8];
        await using var memory = settings.ServerPid is { } pid ? ServerMemory.Watch(pid, settings.MemoryWindow ?? TimeSpan.FromMinutes(5), TimeSpan.FromSeconds(5)) : null;
        var clock = Stopwatch.StartNew();

        async Task User(int user)
        {
            for (int n = 0; n < settings.PostsPerUser && !stop.IsCancellationRequested; n++)
            {
                var started = Stopwatch.StartNew();
                try
                {
                    var response = await client.Raw.ProtectAsync(new Contracts.V1.ProtectRequest
                    {
                        UserId = $"load-{runId}-{user}", PostId = $"{n}", Image = Google.Protobuf.ByteString.CopyFrom(image), Caption = $"post {n} of user {user}",
                        Options = new Contracts.V1.ProtectOptions { Priority = settings.Priority == PostPriority.Bulk ? Contracts.V1.Priority.Bulk : Contracts.V1.Priority.Interactive },
                    }, client.Headers, cancellationToken: stop.Token);
                    lock (gate)
                    {
                        latencies.Add(started.Elapsed.TotalMilliseconds);
                        queued.Add(response.Quality.QueuedMs);
                        batches.Add(response.Quality.BatchSize);
                        optimised.Add(response.Quality.OptimiseMs);
                    }
                }
                catch (RpcException e) when (!(e.StatusCode == StatusCode.Cancelled && stop.IsCancellationRequested))
                {
                    lock (gate) errors[e.StatusCode.ToString()] = errors.GetValueOrDefault(e.StatusCode.ToString()) + 1;
                }
                catch (RpcException) { }
            }
        }

        await Task.WhenAll(Enumerable.Range(0, settings.Users).Select(User));
        double seconds = clock.Elapsed.TotalSeconds;
        latencies.Sort();
        optimised.Sort();
        return new LoadReport(settings.Users, latencies.Count, seconds, latencies.Count / seconds,
            Percentile(latencies, 0.50), Percentile(latencies, 0.95), Percentile(latencies, 0.99),
            queued.DefaultIfEmpty().Average(), batches.Select(b => (double)b).DefaultIfEmpty().Average(), Percentile(optimised, 0.50), errors, memory?.WindowMeans());
    }

    static double Percentile(List<double> sorted, double p) => sorted.Count == 0 ? double.NaN : sorted[Math.Min(sorted.Count - 1, (int)Math.Ceiling(p * sorted.Count) - 1)];

    static byte[] Photo(int side)
    {
        using var bitmap = new SKBitmap(side, side * 3 / 4);
        using var canvas = new SKCanvas(bitmap);
        using var paint = new SKPaint { Shader = SKShader.CreateLinearGradient(new SKPoint(0, 0), new SKPoint(side, side), [SKColors.Teal, SKColors.Gold], SKShaderTileMode.Clamp) };
        canvas.DrawRect(0, 0, side, side, paint);
        using var image = SKImage.FromBitmap(bitmap);
        return image.Encode(SKEncodedImageFormat.Jpeg, 90).ToArray();
    }
}
