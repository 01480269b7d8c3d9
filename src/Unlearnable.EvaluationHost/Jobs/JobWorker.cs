using System.Collections.Concurrent;
using System.Diagnostics;
using Microsoft.Extensions.Options;
using Unlearnable.Clip.Runtime;
using Unlearnable.Contracts.V1;
using Unlearnable.Evaluation;

namespace Unlearnable.EvaluationHost.Jobs;

/// <summary>
/// Runs queued jobs one at a time on the host's device. A job cancelled by its owner ends
/// CANCELLED; a job interrupted by the host stopping goes back to the queue and, like one
/// interrupted by a crash, resumes from its work folder when the host starts again, up to
/// MaxAttempts starts: a job that keeps stopping the host (out of memory, killed) then fails,
/// so the jobs behind it run.
/// </summary>
public sealed class JobWorker(JobStore store, JobEvents events, SpecAdmission admission, IOptions<EvaluationHostOptions> options, ILogger<JobWorker> log) : BackgroundService
{
    readonly ConcurrentDictionary<string, CancellationTokenSource> _running = new();
    readonly SemaphoreSlim _wake = new(0);

    /// <summary>Tells the worker a job was queued, so it does not wait for its next poll.</summary>
    public void Wake() => _wake.Release();

    protected override async Task ExecuteAsync(CancellationToken stopping)
    {
        int resumed = store.Requeue();
        if (resumed > 0) log.LogInformation("{Count} interrupted job(s) queued again to resume", resumed);
        var device = Devices.Resolve(options.Value.Device);
        while (!stopping.IsCancellationRequested)
        {
            var job = store.StartNext();
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

    /// <summary>Cancels a queued job at once or a running one at its next step; false when the job has already ended.</summary>
    public bool Cancel(string jobId)
    {
        if (store.Finish(jobId, JobState.Cancelled, onlyIfQueued: true))
        {
            Publish(store.Get(jobId)!, "cancelled before it started");
            return true;
        }
        // Not queued: running (the worker may have just taken it), or already ended.
        for (int attempt = 0; attempt < 50; attempt++)
        {
            if (_running.TryGetValue(jobId, out var cancel))
            {
                cancel.Cancel();
                return true;
            }
            if (store.Get(jobId) is not { State: JobState.Running }) return false;
            Thread.Sleep(20);
        }
        return false;
    }

    void Run(Job job, TorchSharp.torch.Device device, CancellationToken stopping)
    {
        using var cancel = CancellationTokenSource.CreateLinkedTokenSource(stopping);
        _running[job.JobId] = cancel;
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
                    if (p.Phase != "train" || saved.ElapsedMilliseconds > 1000) { store.SaveEvent(e); saved.Restart(); }
                },
            }.Run(cancel.Token);
            End(job, JobState.Succeeded, "", "report written");
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
            store.Requeue(job.JobId);
            Publish(store.Get(job.JobId)!, "the host is stopping: the job resumes from its last epoch when it starts again");
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
        }
    }

    void End(Job job, JobState state, string error, string message)
    {
        store.Finish(job.JobId, state, error);
        Publish(store.Get(job.JobId)!, message);
    }

    void Publish(Job job, string message)
    {
        var e = Event(job, job.State, JobProgress.Stage(job.State.ToString().ToLowerInvariant(), message));
        store.SaveEvent(e);
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
