using System.Diagnostics;
using Grpc.Core;
using Grpc.Health.V1;
using Grpc.Net.Client;

namespace Unlearnable.Tests;

/// <summary>
/// One of our hosts as its own process (the build's dll beside the tests), on free loopback
/// ports, started in a folder with settings given as environment variables, and ready once its
/// gRPC health says SERVING: so a test can run several, measure one, or SIGKILL one mid-work.
/// </summary>
public sealed class HostProcess : IAsyncDisposable
{
    readonly Process _process;
    public int GrpcPort { get; }
    public string Folder { get; }
    public GrpcChannel Channel { get; }
    public int Pid => _process.Id;
    public string Address => $"http://127.0.0.1:{GrpcPort}";

    HostProcess(Process process, int grpcPort, string folder)
    {
        (_process, GrpcPort, Folder) = (process, grpcPort, folder);
        Channel = GrpcChannel.ForAddress(Address, new GrpcChannelOptions { MaxReceiveMessageSize = 64 << 20, MaxSendMessageSize = 64 << 20 });
    }

    public static async Task<HostProcess> StartAsync(string dll, string folder, IDictionary<string, string> settings, TimeSpan? readyWithin = null)
    {
        Directory.CreateDirectory(folder);
        int grpc = LoopbackPorts.Free();
        var start = new ProcessStartInfo("dotnet", Path.Combine(AppContext.BaseDirectory, dll))
        {
            RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = folder,
        };
        var environment = new Dictionary<string, string>
        {
            ["ASPNETCORE_ENVIRONMENT"] = "Production",
            ["Kestrel__Endpoints__Grpc__Url"] = $"http://127.0.0.1:{grpc}",
            ["Kestrel__Endpoints__Grpc__Protocols"] = "Http2",
            ["Kestrel__Endpoints__Http__Url"] = $"http://127.0.0.1:{LoopbackPorts.Free()}",
            ["Kestrel__Endpoints__Http__Protocols"] = "Http1",
            ["Logging__LogLevel__Default"] = "Warning",
        };
        foreach (var (k, v) in settings) environment[k] = v;
        foreach (var (k, v) in environment) start.Environment[k] = v;
        var process = Process.Start(start)!;
        var errors = new System.Text.StringBuilder();
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, e) => { lock (errors) errors.AppendLine(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var host = new HostProcess(process, grpc, folder);
        var until = DateTime.UtcNow + (readyWithin ?? TimeSpan.FromMinutes(3));
        while (true)
        {
            if (process.HasExited)
            {
                await host.DisposeAsync();
                lock (errors) throw new InvalidOperationException($"{dll} exited with {process.ExitCode}: {errors}");
            }
            try
            {
                if ((await new Health.HealthClient(host.Channel).CheckAsync(new HealthCheckRequest())).Status == HealthCheckResponse.Types.ServingStatus.Serving) return host;
            }
            catch (RpcException) { }   // not listening yet
            if (DateTime.UtcNow > until)
            {
                await host.DisposeAsync();
                throw new TimeoutException($"{dll} did not report SERVING within {readyWithin ?? TimeSpan.FromMinutes(3)}");
            }
            await Task.Delay(200);
        }
    }

    /// <summary>SIGKILL: no drain, no flush, as the kernel's OOM killer or a crash would end it.</summary>
    public void Kill()
    {
        _process.Kill(entireProcessTree: true);
        _process.WaitForExit();
    }

    public async ValueTask DisposeAsync()
    {
        Channel.Dispose();
        if (!_process.HasExited) Kill();
        _process.Dispose();
        await Task.CompletedTask;
    }
}
