using Microsoft.Extensions.Options;

namespace Unlearnable.EvaluationHost.Jobs;

/// <summary>
/// Deletes ended jobs with their folders: on request, and hourly for jobs that ended longer ago
/// than the retention time. A failed sweep is logged and tried again next time; it never stops the host.
/// </summary>
public sealed class JobRetention(JobStore store, IOptions<EvaluationHostOptions> options, ILogger<JobRetention> log, TimeProvider clock) : BackgroundService
{
    /// <summary>Deletes an ended job and its folder; false when no such job has ended.</summary>
    public bool Delete(string jobId)
    {
        if (!store.Delete(jobId)) return false;
        var folder = options.Value.JobFolder(jobId);
        try
        {
            if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            log.LogWarning(e, "job {Job} was deleted but its folder {Folder} could not be removed", jobId, folder);
        }
        return true;
    }

    public int Sweep()
    {
        long cutoff = clock.GetUtcNow().Add(-options.Value.Retention).ToUnixTimeMilliseconds();
        return store.EndedBefore(cutoff).Count(job => Delete(job.JobId));
    }

    protected override async Task ExecuteAsync(CancellationToken stopping)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromHours(1));
        do
        {
            try
            {
                int deleted = Sweep();
                if (deleted > 0) log.LogInformation("Deleted {Count} job(s) that ended more than {Retention} ago", deleted, options.Value.Retention);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                log.LogError(e, "The retention sweep failed; it runs again in an hour");
            }
        }
        while (await timer.WaitForNextTickAsync(stopping).ConfigureAwait(false));
    }
}
