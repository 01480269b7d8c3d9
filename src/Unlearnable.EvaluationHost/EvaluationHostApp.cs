using Unlearnable.EvaluationHost.Jobs;
using Unlearnable.EvaluationHost.Services;

namespace Unlearnable.EvaluationHost;

/// <summary>
/// Composition of the evaluation host: gRPC (HTTP/2) on the "Grpc" endpoint, a plain HTTP
/// health probe on "Http", the SQLite job queue and the single job worker. A separate process
/// from the sidecar, with its own ports (5061/5062 by default).
/// </summary>
public static class EvaluationHostApp
{
    public static WebApplication Build(string[] args, Action<WebApplicationBuilder>? configure = null)
    {
        var builder = WebApplication.CreateBuilder(args);
        configure?.Invoke(builder);
        builder.Services.Configure<EvaluationHostOptions>(builder.Configuration.GetSection("Evaluation"));
        builder.Services.AddSingleton<JobStore>();
        builder.Services.AddSingleton<JobEvents>();
        builder.Services.AddSingleton<JobWorker>();
        builder.Services.AddHostedService(services => services.GetRequiredService<JobWorker>());
        builder.Services.AddGrpc(grpc => grpc.MaxReceiveMessageSize = 1 << 20);
        builder.Services.AddGrpcReflection();

        var app = builder.Build();
        app.MapGrpcService<EvaluationGrpcService>();
        app.MapGrpcReflectionService();
        app.MapGet("/healthz", () => Results.Ok("ok"));
        return app;
    }
}
