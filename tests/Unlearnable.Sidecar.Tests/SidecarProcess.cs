using Grpc.Core;
using Grpc.Net.Client;
using Unlearnable.Contracts.V1;
using Unlearnable.Tests;

namespace Unlearnable.Sidecar.Tests;

/// <summary>
/// The sidecar as its own process (the build's unlearnable-sidecar.dll), so a test can measure
/// its memory, kill it with SIGKILL mid-batch and start it again on the same folder, or run two
/// replicas side by side.
/// </summary>
public sealed class SidecarProcess : IAsyncDisposable
{
    readonly HostProcess _host;
    public ProtectionService.ProtectionServiceClient Client { get; }
    public Metadata Auth { get; } = new() { { "x-api-key", SidecarServer.ApiKey } };
    public GrpcChannel Channel => _host.Channel;
    public string Folder => _host.Folder;
    public int Pid => _host.Pid;
    public string Address => _host.Address;
    public int HttpPort => _host.HttpPort;
    public int GrpcPort => _host.GrpcPort;

    SidecarProcess(HostProcess host)
    {
        _host = host;
        Client = new ProtectionService.ProtectionServiceClient(host.Channel);
    }

    public static async Task<SidecarProcess> StartAsync(string folder, IDictionary<string, string>? settings = null)
    {
        var environment = ToyPublicModel.Environment();
        environment["Sidecar__Profiles__DatabasePath"] = Path.Combine(folder, "sidecar.db");
        environment["Sidecar__Protection__Medium__PgdSteps"] = "3";
        environment["Sidecar__Protection__Medium__Rounds"] = "1";
        environment["Sidecar__Protection__TopK"] = "4";
        environment["Sidecar__Auth__ApiKeys__0"] = SidecarServer.ApiKey;
        foreach (var (k, v) in settings ?? new Dictionary<string, string>()) environment[k] = v;
        return new SidecarProcess(await HostProcess.StartAsync("unlearnable-sidecar.dll", folder, environment));
    }

    /// <summary>SIGKILL: no drain, no flush, as the kernel's OOM killer or a crash would end it.</summary>
    public void Kill() => _host.Kill();

    /// <summary>SIGTERM: the sidecar drains (NOT_SERVING, GOAWAY, posts in flight finish) and exits.</summary>
    public void Terminate() => _host.Terminate();
    public Task<int> ExitedAsync(TimeSpan within) => _host.ExitedAsync(within);

    public ValueTask DisposeAsync() => _host.DisposeAsync();
}
