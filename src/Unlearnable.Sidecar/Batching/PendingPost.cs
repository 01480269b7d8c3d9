using System.Diagnostics;
using Unlearnable.Imaging;
using Unlearnable.Sidecar.Posts;

namespace Unlearnable.Sidecar.Batching;

/// <summary>What posts may share a batch: the same noise bound, trigger length, vocabulary and strength (rounds, steps, robustness).</summary>
public sealed record BatchKey(double Epsilon, int TriggerLength, string Vocabulary, Protection.ProtectionStrength Strength);

/// <summary>The protected post, ready to send, plus the numbers the response reports.</summary>
public sealed record ProtectedPost(PublishedImage Image, string Trigger, int[] TriggerIds, double Loss, int PgdSteps, TimeSpan Queued, TimeSpan Optimised, int BatchSize);

/// <summary>A post waiting in the queue. Cancelling it (client gone, deadline) takes it out of its batch.</summary>
public sealed class PendingPost(string userId, PreparedImage image, string caption, BatchKey key, OutputEncoding output, int[]? fixedTrigger, CancellationToken cancel)
{
    public string UserId { get; } = userId;
    public PreparedImage Image { get; } = image;
    public string Caption { get; } = caption;
    public BatchKey Key { get; } = key;
    public OutputEncoding Output { get; } = output;
    public int[]? FixedTrigger { get; } = fixedTrigger;
    public CancellationToken Cancel { get; } = cancel;
    public Stopwatch Queued { get; } = Stopwatch.StartNew();
    public TaskCompletionSource<ProtectedPost> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    int _state;   // 0 queued, 1 taken into a batch, 2 cancelled while queued

    /// <summary>The batcher takes the post, unless it was cancelled first.</summary>
    public bool TryTake() => Interlocked.CompareExchange(ref _state, 1, 0) == 0;

    /// <summary>Cancels a post still in the queue (it will not join a batch), unless the batcher took it first.</summary>
    public bool TryCancelQueued() => Interlocked.CompareExchange(ref _state, 2, 0) == 0;
}
