using Grpc.Core;
using Grpc.Health.V1;
using Grpc.Net.Client;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Unlearnable.Contracts.V1;
using Unlearnable.Tests;

namespace Unlearnable.Sidecar.Tests;

/// <summary>
/// The real sidecar on real loopback ports (gRPC over HTTP/2 and the HTTP metrics endpoint),
/// with its own SQLite file, a quickly trained default surrogate and an API key.
/// </summary>
public sealed class SidecarServer : IAsyncDisposable
{
    public const string ApiKey = "test-key-5b1f";

    readonly WebApplication _app;
    public string Folder { get; }
    public int GrpcPort { get; }
    public int HttpPort { get; }
    public GrpcChannel Channel { get; }
    public ProtectionService.ProtectionServiceClient Client { get; }
    public Metadata Auth { get; } = new() { { "x-api-key", ApiKey } };
    public IServiceProvider Services => _app.Services;
    readonly bool _ownsFolder;
    bool _stopped;

    SidecarServer(WebApplication app, string folder, bool ownsFolder, int grpcPort, int httpPort)
    {
        (_app, Folder, _ownsFolder, GrpcPort, HttpPort) = (app, folder, ownsFolder, grpcPort, httpPort);
        Channel = GrpcChannel.ForAddress($"http://127.0.0.1:{grpcPort}", new GrpcChannelOptions { MaxReceiveMessageSize = 64 << 20, MaxSendMessageSize = 64 << 20 });
        Client = new ProtectionService.ProtectionServiceClient(Channel);
    }

    public static async Task<SidecarServer> StartAsync(IDictionary<string, string?>? overrides = null, string? folder = null, bool waitUntilServing = true)
    {
        bool ownsFolder = folder is null;   // a test that passes its folder restarts servers on it and keeps it
        folder ??= TestFolders.New();
        Directory.CreateDirectory(folder);
        var endpoints = new BoundEndpoints();
        var settings = new Dictionary<string, string?>(BoundEndpoints.Settings)
        {
            ["Sidecar:Profiles:DatabasePath"] = Path.Combine(folder, "sidecar.db"),
            ["Sidecar:Protection:Low:PgdSteps"] = "2",
            ["Sidecar:Protection:Medium:PgdSteps"] = "3",
            ["Sidecar:Protection:Medium:Rounds"] = "1",
            ["Sidecar:Protection:High:PgdSteps"] = "3",
            ["Sidecar:Protection:High:Rounds"] = "2",
            ["Sidecar:Protection:TopK"] = "4",
            ["Sidecar:Protection:UserShare"] = "0.5",   // off by default; on here so the per-user pattern is exercised
            ["Sidecar:Batching:MaxWait"] = "00:00:00.025",
            ["Sidecar:Batching:MinContrastiveBatch"] = "4",
            ["Sidecar:Auth:ApiKeys:0"] = ApiKey,
            ["Logging:LogLevel:Default"] = "Warning",
        };
        foreach (var (k, v) in ToyPublicModel.Settings) settings[k] = v;
        foreach (var (k, v) in overrides ?? new Dictionary<string, string?>()) settings[k] = v;
        var app = SidecarApp.Build(["--environment", "Production"], b =>
        {
            b.Configuration.AddInMemoryCollection(settings);
            endpoints.Watch(b);
        });
        await app.StartAsync();
        var server = new SidecarServer(app, folder, ownsFolder, endpoints.GrpcPort, endpoints.HttpPort);
        if (waitUntilServing) await server.WaitUntilServingAsync();
        return server;
    }

    public async Task<HealthCheckResponse.Types.ServingStatus> HealthAsync() =>
        (await new Health.HealthClient(Channel).CheckAsync(new HealthCheckRequest())).Status;

    public async Task WaitUntilServingAsync()
    {
        var until = DateTime.UtcNow.AddMinutes(3);
        while (await HealthAsync() != HealthCheckResponse.Types.ServingStatus.Serving)
        {
            if (DateTime.UtcNow > until) throw new TimeoutException("the sidecar did not report SERVING within 3 minutes");
            await Task.Delay(200);
        }
    }

    /// <summary>Stops the host as SIGTERM would (drain, then stop); the test may go on calling it meanwhile.</summary>
    public Task StopAsync()
    {
        _stopped = true;
        return _app.StopAsync();
    }

    public async ValueTask DisposeAsync()
    {
        Channel.Dispose();
        if (!_stopped) await _app.StopAsync();
        await _app.DisposeAsync();
        // Each server trains its own surrogate (~30 MB): a run starts about a hundred of them.
        if (_ownsFolder) TestFolders.TryDelete(Folder);
    }
}

/// <summary>One server shared by the tests of a class (training the default surrogate takes seconds).</summary>
public sealed class SharedSidecar : IAsyncLifetime
{
    public SidecarServer Server { get; private set; } = null!;
    public async Task InitializeAsync() => Server = await SidecarServer.StartAsync();
    public async Task DisposeAsync() => await Server.DisposeAsync();
}
