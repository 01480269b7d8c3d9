using Microsoft.Extensions.Options;
using Unlearnable.Clip.Runtime;
using Unlearnable.Sidecar.Model;
using Unlearnable.Sidecar.Observability;

namespace Unlearnable.Sidecar.Batching;

/// <summary>The queue was full; the caller should back off (RESOURCE_EXHAUSTED).</summary>
public class QueueFullException(string message) : Exception(message)
{
    public QueueFullException(int capacity) : this($"the protection queue is full ({capacity} posts waiting); retry later") { }
}

/// <summary>The posts inside the server now, from admission to answer, wherever they are (decoding, queued, in a batch, being finished).</summary>
public interface IPostsInFlight
{
    int Count { get; }
}

/// <summary>
/// Posts from every stream and unary call queue here (<see cref="PostQueue"/>: interactive before
/// bulk, timed-out posts rejected or delayed). One worker takes the first waiting post and up to
/// MaxBatchSize − 1 more with the same settings, and protects them as one batch. After the first
/// post it waits MaxWait for company — longer, up to MaxGather, while other posts are inside the
/// server and on their way (decoded now, or answered and about to be followed by their users' next
/// posts), so a busy server runs full batches while a lone post starts at once. One batch runs at
/// a time, on the host's torch thread (see TorchThread), so the warm model is used by one thread
/// only. A cancelled post leaves the queue at once.
/// </summary>
public sealed class MicroBatcher(IOptions<SidecarOptions> options, WarmSurrogate surrogate, BatchRunner runner, TorchThread torch, IPostsInFlight inFlight, SidecarMetrics metrics,
    TimeProvider time, ILogger<MicroBatcher> log) : BackgroundService
{
    readonly PostQueue _queue = new(options.Value.Batching.QueueCapacity, options.Value.Batching.BulkQueueCapacity, time);

    public int Waiting => _queue.Count;

    public void Enqueue(PendingPost post)
    {
        try { _queue.Add(post); }
        catch (QueueFullException e)
        {
            metrics.Rejected.WithLabels(e is BulkShareFullException ? "bulk_queue_full" : "queue_full").Inc();
            throw;
        }
        metrics.QueueDepth.Set(Waiting);
        var registration = post.Cancel.Register(() =>
        {
            if (!_queue.TryCancel(post)) return;   // already in a batch (the runner drops its result), or rejected at its timeout
            metrics.QueueDepth.Set(Waiting);
            post.Completion.TrySetCanceled(post.Cancel);
        });
        post.Completion.Task.ContinueWith(t =>
        {
            registration.Dispose();
            if (t.Exception?.InnerException is QueueTimeoutException)
            {
                metrics.Rejected.WithLabels("queue_timeout").Inc();
                metrics.QueueDepth.Set(Waiting);
            }
        }, TaskScheduler.Default);
    }

    async Task GatherAsync(List<PendingPost> taken, BatchingOptions batching, CancellationToken stopping)
    {
        var first = taken[0];
        var since = System.Diagnostics.Stopwatch.StartNew();
        var wait = batching.MaxWait;
        var gather = batching.MaxGather > batching.MaxWait ? batching.MaxGather : batching.MaxWait;
        while (taken.Count < batching.MaxBatchSize)
        {
            if (_queue.TryTake(p => p.Key == first.Key, out var next)) { taken.Add(next); continue; }
            // Posts inside the server but neither queued nor taken into this batch.
            bool onTheirWay = inFlight.Count > Waiting + taken.Count;
            var left = (onTheirWay ? gather : wait) - since.Elapsed;
            if (left <= TimeSpan.Zero) break;
            // Looked at again every few milliseconds: a post on its way may be answered instead of queued (a replay, an
            // error), and a post with other settings wakes the wait without joining.
            using var window = CancellationTokenSource.CreateLinkedTokenSource(stopping);
            window.CancelAfter(TimeSpan.FromMilliseconds(Math.Min(10, left.TotalMilliseconds)));
            try { await _queue.NextAddition.WaitAsync(window.Token); }
            catch (OperationCanceledException) when (!stopping.IsCancellationRequested) { }
        }
        metrics.QueueDepth.Set(Waiting);
    }

    protected override async Task ExecuteAsync(CancellationToken stopping)
    {
        try { await surrogate.Ready.WaitAsync(stopping); }
        catch (Exception) when (!stopping.IsCancellationRequested) { return; }   // the health check reports why
        var batching = options.Value.Batching;
        while (!stopping.IsCancellationRequested)
        {
            try { await _queue.WaitAsync(stopping); }
            catch (OperationCanceledException) { break; }
            if (!_queue.TryTake(_ => true, out var first)) continue;
            var taken = new List<PendingPost> { first };
            try
            {
                await GatherAsync(taken, batching, stopping);
                // A post whose caller gave up while the batch gathered is answered now instead of optimised.
                foreach (var gone in taken.Where(p => p.Cancel.IsCancellationRequested)) gone.Completion.TrySetCanceled(gone.Cancel);
                var live = taken.Where(p => !p.Cancel.IsCancellationRequested).ToList();
                if (live.Count == 0) continue;
                try { await torch.RunAsync(() => runner.Run(live, stopping)); }
                catch (Exception e)
                {
                    log.LogError(e, "A batch of {Count} posts failed", live.Count);
                    foreach (var p in live) p.Completion.TrySetException(e);
                }
            }
            finally
            {
                // Taken posts no longer answer their cancellation: whatever stopped this batch (the host stopping) answers them.
                foreach (var p in taken) p.Completion.TrySetCanceled();
            }
        }
    }
}
