using System.Diagnostics;
using Grpc.Core;
using Grpc.Health.V1;
using Grpc.Net.Client;

namespace Unlearnable.Tests;

/// <summary>
/// One of our hosts as its own process (the build's dll beside the tests), on loopback ports it
/// binds itself, started in a folder with settings given as environment variables, and ready once its
/// gRPC health says SERVING: so a test can run several, measure one, or SIGKILL one mid-work.
/// </summary>
public sealed partial class HostProcess : IAsyncDisposable
{
    readonly Process _process;
    public int GrpcPort { get; }
    public string Folder { get; }
    public GrpcChannel Channel { get; }
    public int Pid => _process.Id;
    public string Address => $"http://127.0.0.1:{GrpcPort}";

    /// <summary>The plain HTTP endpoint (/healthz, /metrics).</summary>
    public int HttpPort { get; }

    HostProcess(Process process, int grpcPort, int httpPort, string folder, GrpcChannel channel) =>
        (_process, GrpcPort, HttpPort, Folder, Channel) = (process, grpcPort, httpPort, folder, channel);

    public static async Task<HostProcess> StartAsync(string dll, string folder, IDictionary<string, string> settings, TimeSpan? readyWithin = null)
    {
        Directory.CreateDirectory(folder);
        var start = new ProcessStartInfo("dotnet", Path.Combine(AppContext.BaseDirectory, dll))
        {
            RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = folder,
        };
        // Both endpoints on port 0, bound by the host itself; it says where ("Now listening on: …").
        var environment = new Dictionary<string, string>
        {
            ["ASPNETCORE_ENVIRONMENT"] = "Production",
            ["Kestrel__Endpoints__Grpc__Url"] = "http://127.0.0.1:0",
            ["Kestrel__Endpoints__Grpc__Protocols"] = "Http2",
            ["Kestrel__Endpoints__Http__Url"] = "http://127.0.0.1:0",
            ["Kestrel__Endpoints__Http__Protocols"] = "Http1",
            ["Logging__LogLevel__Default"] = "Warning",
            ["Logging__LogLevel__Microsoft.Hosting.Lifetime"] = "Information",
        };
        foreach (var (k, v) in settings) environment[k] = v;
        foreach (var (k, v) in environment) start.Environment[k] = v;
        var process = Process.Start(start)!;
        var errors = new System.Text.StringBuilder();
        var listening = new System.Collections.Concurrent.ConcurrentQueue<int>();
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is { } line && ListeningOn().Match(line) is { Success: true } m) listening.Enqueue(int.Parse(m.Groups[1].Value));
        };
        process.ErrorDataReceived += (_, e) => { lock (errors) errors.AppendLine(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var until = DateTime.UtcNow + (readyWithin ?? TimeSpan.FromMinutes(3));
        var channels = new Dictionary<int, GrpcChannel>();
        try
        {
            while (true)
            {
                if (process.HasExited)
                    lock (errors) throw new InvalidOperationException($"{dll} exited with {process.ExitCode}: {errors}");
                foreach (int port in listening.Where(p => !channels.ContainsKey(p)).ToList())
                    channels[port] = GrpcChannel.ForAddress($"http://127.0.0.1:{port}", new GrpcChannelOptions { MaxReceiveMessageSize = 64 << 20, MaxSendMessageSize = 64 << 20 });
                // The HTTP/1 endpoint fails a gRPC call; the gRPC one answers, SERVING once the host is ready.
                foreach (var (port, channel) in channels)
                {
                    try
                    {
                        if ((await new Health.HealthClient(channel).CheckAsync(new HealthCheckRequest())).Status == HealthCheckResponse.Types.ServingStatus.Serving)
                        {
                            foreach (var other in channels.Values.Where(c => c != channel)) other.Dispose();
                            // Both endpoints are announced before the host is ready.
                            return new HostProcess(process, port, channels.Keys.FirstOrDefault(p => p != port), folder, channel);
                        }
                    }
                    catch (RpcException) { }   // not this endpoint, or not listening yet
                }
                if (DateTime.UtcNow > until) throw new TimeoutException($"{dll} did not report SERVING within {readyWithin ?? TimeSpan.FromMinutes(3)}");
                await Task.Delay(200);
            }
        }
        catch
        {
            foreach (var channel in channels.Values) channel.Dispose();
            if (!process.HasExited) process.Kill(entireProcessTree: true);
            process.Dispose();
            throw;
        }
    }

    [System.Text.RegularExpressions.GeneratedRegex(@"Now listening on: http://127\.0\.0\.1:(\d+)")]
    private static partial System.Text.RegularExpressions.Regex ListeningOn();

    /// <summary>SIGKILL: no drain, no flush, as the kernel's OOM killer or a crash would end it.</summary>
    public void Kill()
    {
        _process.Kill(entireProcessTree: true);
        _process.WaitForExit();
    }

    /// <summary>SIGTERM, as Kubernetes stops a pod: the host drains and exits on its own.</summary>
    public void Terminate()
    {
        if (SignalProcess(_process.Id, 15) != 0) throw new InvalidOperationException($"could not send SIGTERM to {_process.Id}");
    }

    /// <summary>Waits for the host to exit (after <see cref="Terminate"/>); its exit code.</summary>
    public async Task<int> ExitedAsync(TimeSpan within)
    {
        await _process.WaitForExitAsync().WaitAsync(within);
        return _process.ExitCode;
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    static extern int SignalProcess(int pid, int signal);

    public async ValueTask DisposeAsync()
    {
        Channel.Dispose();
        if (!_process.HasExited) Kill();
        _process.Dispose();
        await Task.CompletedTask;
    }
}
