using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Unlearnable.EvaluationHost.Jobs;

/// <summary>Healthy while the job queue (SQLite file or PostgreSQL server) answers.</summary>
public sealed class QueueHealthCheck(JobStore store) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        try
        {
            store.Ping();
            return Task.FromResult(HealthCheckResult.Healthy());
        }
        catch (Exception e) { return Task.FromResult(HealthCheckResult.Unhealthy("the job queue does not answer: " + e.Message)); }
    }
}
