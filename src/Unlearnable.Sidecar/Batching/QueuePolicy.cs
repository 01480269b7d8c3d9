namespace Unlearnable.Sidecar.Batching;

/// <summary>Which waiting posts start first: every interactive post before any bulk one.</summary>
public enum PostPriority { Interactive, Bulk }

/// <summary>What happens to a post that waits longer than its queue timeout (Triton's queue policy).</summary>
public enum QueueTimeoutAction
{
    /// <summary>Answered at once, unprotected (DEADLINE_EXCEEDED).</summary>
    Reject,
    /// <summary>Still protected, after every waiting post that has not timed out.</summary>
    Delay,
}

/// <summary>How one post waits: its priority, and its timeout (null = none) with the action taken when it passes.</summary>
public sealed record QueuePolicy(PostPriority Priority, TimeSpan? Timeout, QueueTimeoutAction Action);

/// <summary>The post waited in the queue longer than its timeout and was rejected (DEADLINE_EXCEEDED).</summary>
public sealed class QueueTimeoutException(string message) : Exception(message);

/// <summary>Bulk posts already fill their share of the queue (RESOURCE_EXHAUSTED); interactive posts may still be queued.</summary>
public sealed class BulkShareFullException(int bulkCapacity, int capacity) : QueueFullException(
    $"bulk posts already fill their share of the queue ({bulkCapacity} of {capacity}, Sidecar:Batching:BulkQueueShare); retry later or send interactive posts");
