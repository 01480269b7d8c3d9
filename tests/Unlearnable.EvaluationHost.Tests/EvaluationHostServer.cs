using Grpc.Core;
using Grpc.Core.Interceptors;
using Grpc.Net.Client;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Unlearnable.Contracts.V1;
using Unlearnable.Tests;

namespace Unlearnable.EvaluationHost.Tests;

/// <summary>The real evaluation host on a real loopback port, with its own data folder (which a restarted host can reuse).</summary>
public sealed class EvaluationHostServer : IAsyncDisposable
{
    public const string ApiKey = "host-test-key-9c2e";
    /// <summary>The tenant <see cref="ApiKey"/> is, as the host's store records it.</summary>
    public static string Tenant => Hosting.ApiKeyPolicy.KeyTenant(ApiKey);
    readonly WebApplication _app;
    public string DataDirectory { get; }
    public GrpcChannel Channel { get; }
    /// <summary>A client that sends the API key on every call.</summary>
    public EvaluationService.EvaluationServiceClient Client { get; }
    /// <summary>A client that sends none.</summary>
    public EvaluationService.EvaluationServiceClient Anonymous { get; }
    public IServiceProvider Services => _app.Services;
    /// <summary>The plain HTTP endpoint: /healthz and /metrics.</summary>
    public int HttpPort { get; }

    EvaluationHostServer(WebApplication app, string dataDirectory, int port, int httpPort)
    {
        (_app, DataDirectory, HttpPort) = (app, dataDirectory, httpPort);
        Channel = GrpcChannel.ForAddress($"http://127.0.0.1:{port}");
        Client = new EvaluationService.EvaluationServiceClient(Channel.Intercept(headers =>
        {
            headers.Add("x-api-key", ApiKey);
            return headers;
        }));
        Anonymous = new EvaluationService.EvaluationServiceClient(Channel);
    }

    public static async Task<EvaluationHostServer> StartAsync(string? dataDirectory = null, IDictionary<string, string?>? overrides = null)
    {
        dataDirectory ??= TestFolders.New();
        var endpoints = new BoundEndpoints();
        var settings = new Dictionary<string, string?>(BoundEndpoints.Settings)
        {
            ["Evaluation:DataDirectory"] = dataDirectory,
            ["Evaluation:Device"] = "cpu",
            ["Evaluation:Auth:ApiKeys:0"] = ApiKey,
            ["Logging:LogLevel:Default"] = "Warning",
        };
        foreach (var (key, value) in overrides ?? new Dictionary<string, string?>()) settings[key] = value;
        var app = EvaluationHostApp.Build([], b =>
        {
            b.Configuration.AddInMemoryCollection(settings);
            endpoints.Watch(b);
        });
        await app.StartAsync();
        return new EvaluationHostServer(app, dataDirectory, endpoints.GrpcPort, endpoints.HttpPort);
    }

    public async ValueTask DisposeAsync()
    {
        Channel.Dispose();
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
