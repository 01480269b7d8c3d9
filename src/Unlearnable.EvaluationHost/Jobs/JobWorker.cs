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
public sealed class JobWorker(JobStore store, JobEvents events, SpecAdmission admission, DiskFloor disk, TorchThread torch, IOptions<EvaluationHostOptions> options,
    ILogger<JobWorker> log) : BackgroundService
{
    static readonly TimeSpan RenewEvery = TimeSpan.FromSeconds(1);
    readonly ConcurrentDictionary<string, CancellationTokenSource> _running = new();
    readonly SemaphoreSlim _wake = new(0);

    /// <summary>This process among the hosts sharing the queue: the owner of the jobs it runs.</summary>
    public string Id { get; } = $"{Environment.MachineName}/{Environment.ProcessId}/{Guid.NewGuid().ToString("N")[..6]}";

    public bool RunsHere(string jobId) => _running.ContainsKey(jobId);

    /// <summary>Tells the worker a job was queued, so it does not wait for its next poll.</summary>
    public void Wake() => _wake.Release();

    protected override async Task ExecuteAsync(CancellationToken stopping)
    {
        int resumed = await Retrying("recovering interrupted jobs", store.RecoverInterrupted, stopping);
        if (resumed > 0) log.LogInformation("{Count} interrupted job(s) queued again to resume", resumed);
        var device = Devices.Resolve(options.Value.Device);
        int threads = await torch.RunAsync(TorchRuntime.UseHostThreads);   // the pod's cores, not the node's
        log.LogInformation("Jobs run with {Threads} torch threads", threads);
        while (!stopping.IsCancellationRequested)
        {
            // Below the disk floor queued jobs wait (a job started now would fail at once); a running job is stopped by its lease loop.
            if (disk.Shortfall() is { } full)
            {
                log.LogWarning("Not starting jobs: {Reason}", full);
                try { await Task.Delay(TimeSpan.FromSeconds(10), stopping); }
                catch (OperationCanceledException) { return; }
                continue;
            }
            var (job, abandoned) = await Retrying("taking the next job", () => store.StartNext(Id, options.Value.Lease), stopping);
            foreach (var gone in abandoned) Publish(gone, "cancelled: its host stopped after the cancellation was asked for");
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
            // Every job on the one torch thread: a thread per job would leave libgomp a team per thread (see TorchThread).
            await torch.RunAsync(() => Run(job, device, stopping));
        }
    }

    /// <summary>What the queue throws when it cannot be reached (a database restart, a failover, a full or locked file).</summary>
    static bool QueueUnreachable(Exception e) => e is System.Data.Common.DbException or TimeoutException or IOException;

    /// <summary>
    /// The queue's answer, asked again every few seconds while the queue cannot be reached (a
    /// database restart or failover must not stop the host, whose jobs would then be lost).
    /// </summary>
    async Task<T> Retrying<T>(string what, Func<T> call, CancellationToken stopping)
    {
        for (var wait = TimeSpan.FromSeconds(1); ; wait = TimeSpan.FromSeconds(Math.Min(30, wait.TotalSeconds * 2)))
        {
            try { return call(); }
            catch (Exception e) when (QueueUnreachable(e) || e is InvalidOperationException)
            {
                log.LogWarning(e, "{What} failed: the job queue does not answer; trying again in {Seconds} s", what, wait.TotalSeconds);
                await Task.Delay(wait, stopping);
            }
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

    /// <summary>
    /// Renews the job's lease every second until the job ends; cancels it when asked to, or as
    /// soon as the lease is lost or could have run out unrenewed (the queue unreachable), so that
    /// two hosts never run one job over the same folder; and when the data volume falls below its floor (<see cref="DiskFloor"/>).
    /// </summary>
    async Task HoldLease(Job job, CancellationTokenSource cancel, Action lost, Action<string> diskFull)
    {
        var renewed = Stopwatch.StartNew();
        var margin = options.Value.Lease - RenewEvery;
        try
        {
            while (!cancel.IsCancellationRequested)
            {
                await Task.Delay(RenewEvery, cancel.Token);
                LeaseState state;
                try { state = store.Renew(job.JobId, Id, options.Value.Lease); }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    if (renewed.Elapsed < margin) { log.LogWarning(e, "renewing the lease of job {Job} failed; trying again", job.JobId); continue; }
                    state = LeaseState.Lost;
                }
                if (disk.Shortfall() is { } full) { diskFull(full); cancel.Cancel(); return; }
                switch (state)
                {
                    case LeaseState.Held: renewed.Restart(); break;
                    case LeaseState.CancelRequested: cancel.Cancel(); return;
                    case LeaseState.Lost: lost(); cancel.Cancel(); return;
                }
            }
        }
        catch (OperationCanceledException) { }
    }

    void Run(Job job, TorchSharp.torch.Device device, CancellationToken stopping)
    {
        using var cancel = CancellationTokenSource.CreateLinkedTokenSource(stopping);
        _running[job.JobId] = cancel;
        bool lostLease = false;
        string? diskFull = null;
        var lease = HoldLease(job, cancel, () => lostLease = true, full => diskFull = full);
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
                    if (p.Phase != "train" || saved.ElapsedMilliseconds > 1000) { Save(e); saved.Restart(); }
                },
            }.Run(cancel.Token);
            End(job, JobState.Succeeded, "", "report written");
        }
        catch (OperationCanceledException) when (lostLease)
        {
            // Its lease ran out unrenewed (another host may have taken it): that host's run is the job's.
            log.LogWarning("job {Job} stopped here: its lease was lost or could not be renewed in time", job.JobId);
        }
        catch (OperationCanceledException) when (diskFull is not null)
        {
            End(job, JobState.Failed, diskFull, $"failed: {diskFull}; its work so far is kept in the job folder");
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
            if (store.Requeue(job.JobId, Id) is { } requeued)
                Publish(requeued, requeued.State == JobState.Cancelled ? "cancelled; its work so far is kept in the job folder"
                    : "the host is stopping: the job resumes from its last epoch when a host starts it again");
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
        // Ending is retried for a while: a job that ran to its end must not go back to the queue for a database blip.
        for (int attempt = 1; ; attempt++)
        {
            try
            {
                if (store.Finish(job.JobId, state, error, worker: Id)) Publish(store.Get(job.JobId)!, message);   // unless another host holds it now
                return;
            }
            catch (Exception e) when (attempt < 10 && QueueUnreachable(e))
            {
                log.LogWarning(e, "ending job {Job} failed (attempt {Attempt}); trying again", job.JobId, attempt);
                Thread.Sleep(TimeSpan.FromSeconds(attempt));
            }
        }
    }

    void Publish(Job job, string message)
    {
        var e = Event(job, job.State, JobProgress.Stage(job.State.ToString().ToLowerInvariant(), message));
        Save(e);
        events.Publish(e);
    }

    // Progress is best effort: a job does not fail because its last event could not be stored.
    void Save(JobEvent e)
    {
        try { store.SaveEvent(e, Id); }
        catch (Exception failure) when (QueueUnreachable(failure))
        {
            log.LogWarning(failure, "storing an event of job {Job} failed; watchers here still get it", e.JobId);
        }
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
