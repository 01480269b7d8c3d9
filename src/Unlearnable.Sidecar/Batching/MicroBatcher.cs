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

/// <summary>The posts inside the server now, from admission to answer, wherever they are (decoding, queued, in a batch, being finished).</summary>
public interface IPostsInFlight
{
    int Count { get; }
}

/// <summary>
/// Posts from every stream and unary call queue here; one worker takes up to MaxBatchSize of
/// them, drops those already cancelled, groups the rest by settings and protects each group as
/// one batch. After the first post it waits MaxWait for company — longer, up to MaxGather, while
/// other posts are inside the server and on their way (decoded now, or answered and about to be
/// followed by their users' next posts), so a busy server runs full batches while a lone post
/// starts at once. One batch runs at a time, so the warm model is used by one thread only.
/// Capacity counts posts not yet taken, and a cancelled post gives its slot back at once.
/// </summary>
public sealed class MicroBatcher(IOptions<SidecarOptions> options, WarmSurrogate surrogate, BatchRunner runner, IPostsInFlight inFlight, SidecarMetrics metrics,
    ILogger<MicroBatcher> log) : BackgroundService
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

    async Task<List<PendingPost>> GatherAsync(PendingPost first, ChannelReader<PendingPost> reader, BatchingOptions batching, CancellationToken stopping)
    {
        var taken = new List<PendingPost> { first };
        var since = System.Diagnostics.Stopwatch.StartNew();
        var wait = TimeSpan.FromMilliseconds(batching.MaxWaitMilliseconds);
        var gather = TimeSpan.FromMilliseconds(Math.Max(batching.MaxGatherMilliseconds, batching.MaxWaitMilliseconds));
        while (taken.Count < batching.MaxBatchSize)
        {
            if (reader.TryRead(out var next)) { taken.Add(next); continue; }
            // Posts inside the server but not in the queue (what is queued, taken posts included, is Waiting).
            bool onTheirWay = inFlight.Count > Waiting;
            var left = (onTheirWay ? gather : wait) - since.Elapsed;
            if (left <= TimeSpan.Zero) break;
            // Looked at again every few milliseconds: a post on its way may be answered instead of queued (a replay, an error).
            using var window = CancellationTokenSource.CreateLinkedTokenSource(stopping);
            window.CancelAfter(onTheirWay ? TimeSpan.FromMilliseconds(Math.Min(10, left.TotalMilliseconds)) : left);
            try { if (!await reader.WaitToReadAsync(window.Token)) break; }
            catch (OperationCanceledException) when (!stopping.IsCancellationRequested) { }
        }
        return taken;
    }

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
            var taken = await GatherAsync(first, reader, batching, stopping);
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
