using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Unlearnable.Sidecar.Model;

/// <summary>Healthy once the surrogate is loaded and warmed; gRPC health reports NOT_SERVING until then.</summary>
public sealed class SurrogateHealthCheck(WarmSurrogate surrogate) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
        Task.FromResult(surrogate.IsReady ? HealthCheckResult.Healthy(surrogate.Description)
            : surrogate.Failure is { } failure ? HealthCheckResult.Unhealthy("surrogate failed to load: " + failure)
            : HealthCheckResult.Unhealthy("surrogate is loading"));
}
