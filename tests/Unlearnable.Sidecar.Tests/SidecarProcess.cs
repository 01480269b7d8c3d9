using System.Diagnostics;
using Grpc.Core;
using Grpc.Health.V1;
using Grpc.Net.Client;
using Unlearnable.Contracts.V1;
using Unlearnable.Tests;

namespace Unlearnable.Sidecar.Tests;

/// <summary>
/// The sidecar as its own process (the build's unlearnable-sidecar.dll), so a test can measure
/// its memory and kill it with SIGKILL mid-batch, then start it again on the same folder.
/// </summary>
public sealed class SidecarProcess : IAsyncDisposable
{
    readonly Process _process;
    public int GrpcPort { get; }
    public string Folder { get; }
    public GrpcChannel Channel { get; }
    public ProtectionService.ProtectionServiceClient Client { get; }
    public Metadata Auth { get; } = new() { { "x-api-key", SidecarServer.ApiKey } };
    public int Pid => _process.Id;
    public string Address => $"http://127.0.0.1:{GrpcPort}";

    SidecarProcess(Process process, int grpcPort, string folder)
    {
        (_process, GrpcPort, Folder) = (process, grpcPort, folder);
        Channel = GrpcChannel.ForAddress(Address, new GrpcChannelOptions { MaxReceiveMessageSize = 64 << 20, MaxSendMessageSize = 64 << 20 });
        Client = new ProtectionService.ProtectionServiceClient(Channel);
    }

    public static async Task<SidecarProcess> StartAsync(string folder, IDictionary<string, string>? settings = null)
    {
        Directory.CreateDirectory(folder);
        int grpc = LoopbackPorts.Free();
        var start = new ProcessStartInfo("dotnet", Path.Combine(AppContext.BaseDirectory, "unlearnable-sidecar.dll"))
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
            ["Sidecar__Profiles__DatabasePath"] = Path.Combine(folder, "sidecar.db"),
            ["Sidecar__Model__DefaultTrainingSteps"] = "6",
            ["Sidecar__Protection__Medium__PgdSteps"] = "3",
            ["Sidecar__Protection__Medium__Rounds"] = "1",
            ["Sidecar__Protection__TopK"] = "4",
            ["Sidecar__Auth__ApiKeys__0"] = SidecarServer.ApiKey,
            ["Logging__LogLevel__Default"] = "Warning",
        };
        foreach (var (k, v) in settings ?? new Dictionary<string, string>()) environment[k] = v;
        foreach (var (k, v) in environment) start.Environment[k] = v;
        var process = Process.Start(start)!;
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var sidecar = new SidecarProcess(process, grpc, folder);
        var until = DateTime.UtcNow.AddMinutes(3);
        while (true)
        {
            if (process.HasExited) throw new InvalidOperationException($"the sidecar process exited with {process.ExitCode}");
            try
            {
                if ((await new Health.HealthClient(sidecar.Channel).CheckAsync(new HealthCheckRequest())).Status == HealthCheckResponse.Types.ServingStatus.Serving) return sidecar;
            }
            catch (RpcException) { }   // not listening yet
            if (DateTime.UtcNow > until) throw new TimeoutException("the sidecar process did not report SERVING within 3 minutes");
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
