using Grpc.Net.Client;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Unlearnable.Contracts.V1;
using Unlearnable.Tests;

namespace Unlearnable.EvaluationHost.Tests;

/// <summary>The real evaluation host on a real loopback port, with its own data folder (which a restarted host can reuse).</summary>
public sealed class EvaluationHostServer : IAsyncDisposable
{
    readonly WebApplication _app;
    public string DataDirectory { get; }
    public GrpcChannel Channel { get; }
    public EvaluationService.EvaluationServiceClient Client { get; }

    EvaluationHostServer(WebApplication app, string dataDirectory, int port)
    {
        (_app, DataDirectory) = (app, dataDirectory);
        Channel = GrpcChannel.ForAddress($"http://127.0.0.1:{port}");
        Client = new EvaluationService.EvaluationServiceClient(Channel);
    }

    public static async Task<EvaluationHostServer> StartAsync(string? dataDirectory = null)
    {
        dataDirectory ??= Path.Combine(Path.GetTempPath(), "unlearnable-host-tests", Guid.NewGuid().ToString("N"));
        int port = LoopbackPorts.Free();
        var settings = new Dictionary<string, string?>
        {
            ["Kestrel:Endpoints:Grpc:Url"] = $"http://127.0.0.1:{port}",
            ["Kestrel:Endpoints:Grpc:Protocols"] = "Http2",
            ["Kestrel:Endpoints:Http:Url"] = $"http://127.0.0.1:{LoopbackPorts.Free()}",
            ["Kestrel:Endpoints:Http:Protocols"] = "Http1",
            ["Evaluation:DataDirectory"] = dataDirectory,
            ["Evaluation:Device"] = "cpu",
            ["Logging:LogLevel:Default"] = "Warning",
        };
        var app = EvaluationHostApp.Build([], b => b.Configuration.AddInMemoryCollection(settings));
        await app.StartAsync();
        return new EvaluationHostServer(app, dataDirectory, port);
    }

    public async ValueTask DisposeAsync()
    {
        Channel.Dispose();
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
