using Unlearnable.Clip.Runtime;
using Unlearnable.EvaluationHost.Jobs;
using Unlearnable.Hosting;
using Unlearnable.EvaluationHost.Services;

namespace Unlearnable.EvaluationHost;

/// <summary>
/// Composition of the evaluation host: gRPC (HTTP/2) on the "Grpc" endpoint, a plain HTTP
/// health probe on "Http", the job queue (SQLite, or PostgreSQL shared by several hosts), this host's job
/// worker, the relay of other hosts' job events and the retention sweep.
/// A separate process from the sidecar, with its own ports (5061/5062 by default). Every
/// evaluation call needs an API key (Evaluation:Auth, required outside Development).
/// </summary>
public static class EvaluationHostApp
{
    public static WebApplication Build(string[] args, Action<WebApplicationBuilder>? configure = null)
    {
        var builder = WebApplication.CreateBuilder(args);
        configure?.Invoke(builder);
        var section = builder.Configuration.GetSection("Evaluation");
        builder.Services.Configure<EvaluationHostOptions>(section);
        var settings = section.Get<EvaluationHostOptions>() ?? new EvaluationHostOptions();
        if (settings.MaxAttempts < 1) throw new InvalidOperationException($"Evaluation:MaxAttempts is {settings.MaxAttempts}; a job needs at least 1 start");
        settings.Store.Validate("Evaluation:Store");
        if (settings.Lease < TimeSpan.FromSeconds(2)) throw new InvalidOperationException($"Evaluation:Lease is {settings.Lease}; it must be at least 2 seconds (it is renewed every second)");
        if (settings.MaxActiveJobsPerTenant < 1) throw new InvalidOperationException($"Evaluation:MaxActiveJobsPerTenant is {settings.MaxActiveJobsPerTenant}; a tenant needs at least 1 job");
        if (settings.Retention <= TimeSpan.Zero) throw new InvalidOperationException($"Evaluation:Retention is {settings.Retention}; it must be positive");
        foreach (var sidecar in settings.Sidecars)
            if (!Uri.TryCreate(sidecar.Address, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
                throw new InvalidOperationException($"Evaluation:Sidecars has address '{sidecar.Address}', which is not an http(s) address");
        // SERVING while the job queue answers: what Kubernetes' native gRPC probes ask. Specs (up to 64 KB each) come keyed.
        builder.AddUnlearnableDefaults<QueueHealthCheck>(ApiKeyPolicy.From(settings.Auth, builder.Environment.IsDevelopment(), "Evaluation"), "queue")
            .AddKeyedService<EvaluationGrpcService>(1 << 20);
        builder.Services.AddSingleton<SpecAdmission>();
        builder.Services.AddSingleton<DiskFloor>();
        if (settings.Store.Provider == StoreProvider.PostgreSql) builder.Services.AddSingleton<JobStore, PostgresJobStore>();
        else builder.Services.AddSingleton<JobStore, SqliteJobStore>();
        builder.Services.AddSingleton<JobEvents>();
        builder.Services.AddSingleton(_ => new TorchThread());   // every job runs on it
        builder.Services.AddSingleton<JobWorker>();
        builder.Services.AddHostedService(services => services.GetRequiredService<JobWorker>());
        builder.Services.AddHostedService<JobEventRelay>();
        builder.Services.AddSingleton<JobRetention>();
        builder.Services.AddHostedService(services => services.GetRequiredService<JobRetention>());

        var app = builder.Build();
        app.UseUnlearnableDefaults(Contracts.V1.EvaluationService.Descriptor.FullName);
        app.MapGrpcService<EvaluationGrpcService>();
        app.MapDefaultEndpoints(_ => true);
        return app;
    }
}
