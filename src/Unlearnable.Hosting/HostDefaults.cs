using Grpc.AspNetCore.Server;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Prometheus;

namespace Unlearnable.Hosting;

/// <summary>
/// What both hosts are made of besides their own services, in one place (eShop's ServiceDefaults): JSON logs outside
/// Development, the API-key policy checked from the headers, gRPC that takes only small requests until a keyed
/// service says otherwise, gRPC health with the host's readiness check, reflection, Prometheus and /healthz.
/// </summary>
public static class HostDefaults
{
    /// <summary>The shared services; returns the gRPC builder for the host's keyed service (<see cref="AddKeyedService{T}"/>).</summary>
    /// <typeparam name="TReady">The host's readiness check: gRPC health answers SERVING only while it is healthy.</typeparam>
    public static IGrpcServerBuilder AddUnlearnableDefaults<TReady>(this WebApplicationBuilder builder, ApiKeyPolicy keys, string readiness,
        long maxSendBytes = int.MaxValue) where TReady : class, IHealthCheck
    {
        if (!builder.Environment.IsDevelopment()) builder.Logging.AddJsonConsole();
        builder.Services.AddSingleton(keys);
        builder.Services.AddSingleton(TimeProvider.System);
        var grpc = builder.Services.AddGrpc(options =>
        {
            options.MaxReceiveMessageSize = ApiKeyPolicy.KeylessMessageBytes;   // health and reflection, which answer without a key
            options.MaxSendMessageSize = (int)Math.Min(int.MaxValue, maxSendBytes);
            options.EnableDetailedErrors = builder.Environment.IsDevelopment();
        });
        builder.Services.AddGrpcHealthChecks(options => options.UseHealthChecksCache = false).AddCheck<TReady>(readiness);
        builder.Services.AddGrpcReflection();
        return grpc;
    }

    /// <summary>A service every call of which needs a key: its own request limit, the key interceptor first.</summary>
    public static IGrpcServerBuilder AddKeyedService<TService>(this IGrpcServerBuilder grpc, int maxReceiveBytes, Action<GrpcServiceOptions<TService>>? more = null)
        where TService : class => grpc.AddServiceOptions<TService>(options =>
        {
            options.MaxReceiveMessageSize = maxReceiveBytes;   // read only once the key is checked (ApiKeyMiddleware)
            options.Interceptors.Add<ApiKeyInterceptor>();
            more?.Invoke(options);
        });

    /// <summary>The first middleware: the malloc warning at start, then keys checked before a body is read (<see cref="ApiKeyMiddleware"/>).</summary>
    public static WebApplication UseUnlearnableDefaults(this WebApplication app, params string[] keyedServices)
    {
        GlibcMalloc.WarnIfArenasUncapped(app.Logger);
        app.UseMiddleware<ApiKeyMiddleware>(new KeyedServices(keyedServices));
        return app;
    }

    /// <summary>
    /// gRPC health and reflection, Prometheus' /metrics and the HTTP probe /healthz ("SERVING" while <paramref name="serving"/>
    /// says so, else 503 "NOT_SERVING"). No per-request HTTP metrics: prometheus-net labels them by the HTTP method a client
    /// sends, so made-up methods would grow /metrics without bound.
    /// </summary>
    public static WebApplication MapDefaultEndpoints(this WebApplication app, Func<IServiceProvider, bool> serving)
    {
        app.MapGrpcHealthChecksService();
        app.MapGrpcReflectionService();
        app.MapMetrics();
        app.MapGet("/healthz", (HttpContext context) =>
            serving(context.RequestServices) ? Results.Ok("SERVING") : Results.Json("NOT_SERVING", statusCode: 503));
        return app;
    }
}
