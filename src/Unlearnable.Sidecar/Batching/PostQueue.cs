namespace Unlearnable.Sidecar.Batching;

/// <summary>
/// Posts waiting for a batch, in three lanes taken in order: interactive, bulk, and posts whose
/// queue timeout passed with DELAY; first in, first out within a lane. A post leaves its lane when
/// it is taken, cancelled or rejected at its timeout, so the lanes hold only posts that can still
/// run. Bulk posts may fill only part of the queue, so an interactive upload always finds room.
/// A post changes state (taken, cancelled, rejected) only under the queue's lock.
/// </summary>
public sealed class PostQueue(int capacity, int bulkCapacity, TimeProvider time)
{
    const int DelayedLane = 2;

    readonly Lock _lock = new();
    readonly LinkedList<PendingPost>[] _lanes = [new(), new(), new()];
    readonly Dictionary<PendingPost, (LinkedListNode<PendingPost> Node, ITimer? Timer)> _where = [];
    TaskCompletionSource _added = new(TaskCreationOptions.RunContinuationsAsynchronously);
    int _bulk;

    public int Count { get { lock (_lock) return _where.Count; } }

    /// <summary>Queues the post, or throws <see cref="QueueFullException"/> when its priority's share of the queue is full.</summary>
    public void Add(PendingPost post)
    {
        TaskCompletionSource added;
        lock (_lock)
        {
            if (_where.Count >= capacity) throw new QueueFullException(capacity);
            bool bulk = post.Policy.Priority == PostPriority.Bulk;
            if (bulk && _bulk >= bulkCapacity) throw new BulkShareFullException(bulkCapacity, capacity);
            // The timer first: nothing is changed if it cannot be made.
            var timer = post.Policy.Timeout is { } timeout ? time.CreateTimer(_ => TimedOut(post), null, timeout, Timeout.InfiniteTimeSpan) : null;
            if (bulk) _bulk++;
            _where[post] = (_lanes[(int)post.Policy.Priority].AddLast(post), timer);
            added = _added;
            _added = new(TaskCreationOptions.RunContinuationsAsynchronously);
        }
        added.TrySetResult();
    }

    /// <summary>Takes the first waiting post, by lane, that <paramref name="fits"/> (e.g. shares the batch's settings).</summary>
    public bool TryTake(Func<PendingPost, bool> fits, out PendingPost post)
    {
        lock (_lock)
            foreach (var lane in _lanes)
                for (var node = lane.First; node is not null; node = node.Next)
                    if (fits(node.Value) && node.Value.TryTake())
                    {
                        post = node.Value;
                        Leave(post);
                        return true;
                    }
        post = null!;
        return false;
    }

    /// <summary>Takes a post out of the queue before it joins a batch (its caller gave up); false when it was taken or rejected first.</summary>
    public bool TryCancel(PendingPost post)
    {
        lock (_lock) return _where.ContainsKey(post) && post.TryCancelQueued() && Leave(post);
    }

    /// <summary>Completes when the next post is added, whatever is waiting now.</summary>
    public Task NextAddition { get { lock (_lock) return _added.Task; } }

    /// <summary>Completes when a post is waiting (at once when one is).</summary>
    public Task WaitAsync(CancellationToken cancel)
    {
        lock (_lock) return (_where.Count > 0 ? Task.CompletedTask : _added.Task).WaitAsync(cancel);
    }

    void TimedOut(PendingPost post)
    {
        lock (_lock)
        {
            if (!_where.TryGetValue(post, out var at)) return;   // taken or cancelled meanwhile
            if (post.Policy.Action == QueueTimeoutAction.Delay)
            {
                if (at.Node.List == _lanes[DelayedLane]) return;
                at.Node.List!.Remove(at.Node);
                _where[post] = (_lanes[DelayedLane].AddLast(post), at.Timer);   // a delayed bulk post keeps its bulk slot until it leaves
                return;
            }
            if (!post.TryCancelQueued()) return;
            Leave(post);
        }
        post.Completion.TrySetException(new QueueTimeoutException(
            $"the post waited {post.Queued.Elapsed.TotalMilliseconds:N0} ms in the queue, over its queue timeout of {post.Policy.Timeout!.Value.TotalMilliseconds:N0} ms " +
            "(options.queue_timeout_ms, or the server's default); it was not protected. Retry later, or ask for TIMEOUT_ACTION_DELAY"));
    }

    bool Leave(PendingPost post)
    {
        var at = _where[post];
        _where.Remove(post);
        at.Timer?.Dispose();
        if (post.Policy.Priority == PostPriority.Bulk) _bulk--;
        at.Node.List!.Remove(at.Node);
        return true;
    }
}
