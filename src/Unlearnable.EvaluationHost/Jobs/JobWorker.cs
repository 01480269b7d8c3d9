using System.Collections.Concurrent;
using System.Diagnostics;
using Microsoft.Extensions.Options;
using Unlearnable.Clip.Runtime;
using Unlearnable.Contracts.V1;
using Unlearnable.Evaluation;

namespace Unlearnable.EvaluationHost.Jobs;

/// <summary>
/// Runs queued jobs one at a time on the host's device, holding each job's lease while it runs.
/// A job cancelled by its owner ends CANCELLED (through any host: the running worker reads the
/// request when it renews); a job interrupted by the host stopping goes back to the queue and,
/// like one whose host crashed, resumes from its work folder — on this host when it starts
/// again, or on any host sharing the queue — up to MaxAttempts starts: a job that keeps stopping
/// its host (out of memory, killed) then fails, so the jobs behind it run.
/// </summary>
public sealed class JobWorker(JobStore store, JobEvents events, SpecAdmission admission, IOptions<EvaluationHostOptions> options, ILogger<JobWorker> log) : BackgroundService
{
    static readonly TimeSpan RenewEvery = TimeSpan.FromSeconds(1);
    readonly ConcurrentDictionary<string, CancellationTokenSource> _running = new();
    readonly SemaphoreSlim _wake = new(0);

    /// <summary>This process among the hosts sharing the queue: the owner of the jobs it runs.</summary>
    public string Id { get; } = $"{Environment.MachineName}/{Environment.ProcessId}/{Guid.NewGuid().ToString("N")[..6]}";

    /// <summary>Tells the worker a job was queued, so it does not wait for its next poll.</summary>
    public void Wake() => _wake.Release();

    protected override async Task ExecuteAsync(CancellationToken stopping)
    {
        int resumed = store.RecoverInterrupted();
        if (resumed > 0) log.LogInformation("{Count} interrupted job(s) queued again to resume", resumed);
        var device = Devices.Resolve(options.Value.Device);
        while (!stopping.IsCancellationRequested)
        {
            var job = store.StartNext(Id, options.Value.Lease);
            if (job is null)
            {
                try { await _wake.WaitAsync(TimeSpan.FromSeconds(2), stopping); }
                catch (OperationCanceledException) { return; }
                continue;
            }
            if (job.Attempts > options.Value.MaxAttempts)
            {
                End(job, JobState.Failed, $"the host stopped {job.Attempts - 1} times while running this job (out of memory or killed?); it is not started again",
                    $"failed: started {job.Attempts - 1} times, the limit is {options.Value.MaxAttempts}");
                continue;
            }
            await Task.Factory.StartNew(() => Run(job, device, stopping), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        }
    }

    /// <summary>Cancels a queued job at once or a running one at its next step, on whichever host runs it; false when the job has already ended.</summary>
    public bool Cancel(string jobId)
    {
        if (store.Finish(jobId, JobState.Cancelled, onlyIfQueued: true))
        {
            Publish(store.Get(jobId)!, "cancelled before it started");
            return true;
        }
        if (!store.RequestCancel(jobId)) return false;   // not running: it has ended
        if (_running.TryGetValue(jobId, out var cancel)) cancel.Cancel();   // ours: now, rather than at the next renewal
        return true;
    }

    /// <summary>Renews the job's lease every second until the job ends; cancels it when asked to, or when the lease was lost to another host.</summary>
    async Task HoldLease(Job job, CancellationTokenSource cancel, Action lost)
    {
        try
        {
            while (!cancel.IsCancellationRequested)
            {
                await Task.Delay(RenewEvery, cancel.Token);
                switch (store.Renew(job.JobId, Id, options.Value.Lease))
                {
                    case LeaseState.CancelRequested: cancel.Cancel(); return;
                    case LeaseState.Lost: lost(); cancel.Cancel(); return;
                }
            }
        }
        catch (OperationCanceledException) { }
        catch (Exception e) { log.LogWarning(e, "renewing the lease of job {Job} failed; trying again", job.JobId); await HoldLease(job, cancel, lost); }
    }

    void Run(Job job, TorchSharp.torch.Device device, CancellationToken stopping)
    {
        using var cancel = CancellationTokenSource.CreateLinkedTokenSource(stopping);
        _running[job.JobId] = cancel;
        bool lostLease = false;
        var lease = HoldLease(job, cancel, () => lostLease = true);
        var saved = Stopwatch.StartNew();
        try
        {
            Publish(job, job.Attempts > 1 ? $"resuming (attempt {job.Attempts})" : "started");
            var spec = admission.ForRun(AttackSpec.Parse(job.SpecJson));
            new AttackJob(spec, device, options.Value.JobFolder(job.JobId))
            {
                OnProgress = p =>
                {
                    var e = Event(job, JobState.Running, p);
                    events.Publish(e);
                    // Step events are many; the stored last event is refreshed at most once a second.
                    if (p.Phase != "train" || saved.ElapsedMilliseconds > 1000) { store.SaveEvent(e, Id); saved.Restart(); }
                },
            }.Run(cancel.Token);
            End(job, JobState.Succeeded, "", "report written");
        }
        catch (OperationCanceledException) when (lostLease)
        {
            // Another host took the job after this one failed to renew in time: that host's run is the job's.
            log.LogWarning("job {Job} was taken over by another host after its lease ran out; stopped here", job.JobId);
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
            store.Requeue(job.JobId, Id);
            Publish(store.Get(job.JobId)!, "the host is stopping: the job resumes from its last epoch when a host starts it again");
        }
        catch (OperationCanceledException)
        {
            End(job, JobState.Cancelled, "", "cancelled; its work so far is kept in the job folder");
        }
        catch (Exception e)
        {
            log.LogError(e, "job {Job} failed", job.JobId);
            End(job, JobState.Failed, e.Message, "failed: " + e.Message);
        }
        finally
        {
            _running.TryRemove(job.JobId, out _);
            cancel.Cancel();   // stops the lease renewals
            lease.Wait(CancellationToken.None);
        }
    }

    void End(Job job, JobState state, string error, string message)
    {
        if (store.Finish(job.JobId, state, error, worker: Id)) Publish(store.Get(job.JobId)!, message);   // unless another host holds it now
    }

    void Publish(Job job, string message)
    {
        var e = Event(job, job.State, JobProgress.Stage(job.State.ToString().ToLowerInvariant(), message));
        store.SaveEvent(e, Id);
        events.Publish(e);
    }

    static JobEvent Event(Job job, JobState state, JobProgress p)
    {
        var e = new JobEvent
        {
            JobId = job.JobId, State = state, Phase = p.Phase, Message = p.Message, Done = p.Done, Total = p.Total, Arm = p.Arm ?? "",
            ArmIndex = p.ArmIndex, Arms = p.Arms, Epoch = p.Epoch, Epochs = p.Epochs, UnixMs = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(),
        };
        if (p.Loss is { } loss && double.IsFinite(loss)) e.Loss = loss;
        return e;
    }
}
