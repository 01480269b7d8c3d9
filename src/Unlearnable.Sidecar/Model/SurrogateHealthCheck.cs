using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Unlearnable.Sidecar.Model;

/// <summary>Healthy once the surrogate is loaded and warmed and until the server starts draining; gRPC health reports NOT_SERVING otherwise.</summary>
public sealed class SurrogateHealthCheck(WarmSurrogate surrogate, Admission.AdmissionControl admission) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
        Task.FromResult(admission.Draining ? HealthCheckResult.Unhealthy("the server is shutting down")
            : surrogate.IsReady ? HealthCheckResult.Healthy(surrogate.Description)
            : surrogate.Failure is { } failure ? HealthCheckResult.Unhealthy("surrogate failed to load: " + failure)
            : HealthCheckResult.Unhealthy("surrogate is loading"));
}
