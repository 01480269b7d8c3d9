using System.Threading.Channels;
using Microsoft.Extensions.Options;
using Unlearnable.Sidecar.Model;
using Unlearnable.Sidecar.Observability;

namespace Unlearnable.Sidecar.Batching;

/// <summary>The queue was full; the caller should back off (RESOURCE_EXHAUSTED).</summary>
public class QueueFullException(string message) : Exception(message)
{
    public QueueFullException(int capacity) : this($"the protection queue is full ({capacity} posts waiting); retry later") { }
}

/// <summary>
/// Posts from every stream and unary call queue here; one worker takes up to MaxBatchSize of
/// them (waiting at most MaxWait after the first), drops those already cancelled, groups the
/// rest by settings and protects each group as one batch. One batch runs at a time, so the
/// warm model is used by one thread only. Capacity counts posts not yet taken, and a cancelled
/// post gives its slot back at once.
/// </summary>
public sealed class MicroBatcher(IOptions<SidecarOptions> options, WarmSurrogate surrogate, BatchRunner runner, SidecarMetrics metrics, ILogger<MicroBatcher> log)
    : BackgroundService
{
    readonly Channel<PendingPost> _queue = Channel.CreateUnbounded<PendingPost>(new UnboundedChannelOptions { SingleReader = true });
    int _waiting;

    public int Waiting => Volatile.Read(ref _waiting);

    public void Enqueue(PendingPost post)
    {
        int capacity = options.Value.Batching.QueueCapacity;
        if (Interlocked.Increment(ref _waiting) > capacity)
        {
            Interlocked.Decrement(ref _waiting);
            metrics.Rejected.WithLabels("queue_full").Inc();
            throw new QueueFullException(capacity);
        }
        metrics.QueueDepth.Set(Waiting);
        var registration = post.Cancel.Register(() =>
        {
            if (!post.TryCancelQueued()) return;   // already in a batch: the runner drops its result
            Release();
            post.Completion.TrySetCanceled(post.Cancel);
        });
        post.Completion.Task.ContinueWith(_ => registration.Dispose(), TaskScheduler.Default);
        _queue.Writer.TryWrite(post);
    }

    void Release() => metrics.QueueDepth.Set(Interlocked.Decrement(ref _waiting));

    protected override async Task ExecuteAsync(CancellationToken stopping)
    {
        try { await surrogate.Ready.WaitAsync(stopping); }
        catch (Exception) when (!stopping.IsCancellationRequested) { return; }   // the health check reports why
        var batching = options.Value.Batching;
        var reader = _queue.Reader;
        while (!stopping.IsCancellationRequested)
        {
            PendingPost first;
            try { first = await reader.ReadAsync(stopping); }
            catch (OperationCanceledException) { break; }
            var taken = new List<PendingPost> { first };
            using (var window = new CancellationTokenSource(batching.MaxWaitMilliseconds))
            {
                while (taken.Count < batching.MaxBatchSize)
                {
                    if (reader.TryRead(out var next)) { taken.Add(next); continue; }
                    try { if (!await reader.WaitToReadAsync(window.Token)) break; }
                    catch (OperationCanceledException) { break; }
                }
            }
            // A post whose caller already gave up was released by its cancellation callback.
            var live = taken.Where(p => p.TryTake()).ToList();
            foreach (var _ in live) Release();
            foreach (var group in live.GroupBy(p => p.Key))
            {
                try { runner.Run(group.ToList(), stopping); }
                catch (Exception e)
                {
                    log.LogError(e, "A batch of {Count} posts failed", group.Count());
                    foreach (var p in group) p.Completion.TrySetException(e);
                }
            }
        }
    }
}
