using Unlearnable.Contracts.V1;

namespace Unlearnable.EvaluationHost.Jobs;

/// <summary>
/// Brings the events of jobs that other hosts run to this host's watchers: when another process
/// stores a job's event and someone here watches that job, the stored event is published here.
/// (This host's own events reach its watchers directly.) A no-op on SQLite, where one host runs
/// every job.
/// </summary>
public sealed class JobEventRelay(JobStore store, JobEvents events, JobWorker worker, ILogger<JobEventRelay> log) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stopping)
    {
        while (!stopping.IsCancellationRequested)
        {
            try { await store.ListenAsync(Relay, CatchUp, stopping); }
            catch (OperationCanceledException) when (stopping.IsCancellationRequested) { return; }
            catch (Exception e)
            {
                log.LogWarning(e, "listening for other hosts' job events failed; listening again in 5 s");
                await Task.Delay(TimeSpan.FromSeconds(5), stopping).ContinueWith(_ => { }, TaskScheduler.Default);
            }
        }
    }

    void Relay(string jobId, string origin)
    {
        if (origin == worker.Id || !events.IsWatched(jobId)) return;
        if (store.Get(jobId)?.LastEvent is { } e) events.Publish(e);
    }

    // After (re)connecting: what watched jobs that run elsewhere stored while nobody listened (their end, say).
    void CatchUp()
    {
        foreach (var jobId in events.Watched())
            if (!worker.RunsHere(jobId) && store.Get(jobId)?.LastEvent is { } e) events.Publish(e);
    }
}
