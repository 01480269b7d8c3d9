using System.Diagnostics;

namespace Unlearnable.Sidecar.Batching;

/// <summary>What posts may share a batch: the same noise bound, trigger length, vocabulary and strength (rounds, steps, robustness).</summary>
public sealed record BatchKey(double Epsilon, int TriggerLength, string Vocabulary, Protection.ProtectionStrength Strength);

/// <summary>
/// What the batch found for one post: its noise at model resolution in whole 1/255 steps within
/// the bound ([3, S, S]), its trigger, and the numbers the response reports. Carrying the noise to
/// the full-size photo and encoding it is the post's own work, off the model's thread.
/// </summary>
public sealed record BatchedNoise(sbyte[] Noise, int Bound, string Trigger, int[] TriggerIds, double Loss, int PgdSteps, TimeSpan Queued, TimeSpan Optimised, int BatchSize);

/// <summary>
/// A post waiting in the queue: only what the model needs (its model-resolution pixels in [0, 1],
/// CHW, and caption). Cancelling it (client gone, deadline) takes it out of its batch.
/// </summary>
public sealed class PendingPost(Profiles.UserKey user, float[] pixels01, string caption, BatchKey key, int[]? fixedTrigger, QueuePolicy policy, CancellationToken cancel)
{
    public QueuePolicy Policy { get; } = policy;
    public Profiles.UserKey User { get; } = user;
    public float[] Pixels01 { get; } = pixels01;
    public string Caption { get; } = caption;
    public BatchKey Key { get; } = key;
    public int[]? FixedTrigger { get; } = fixedTrigger;
    public CancellationToken Cancel { get; } = cancel;
    public Stopwatch Queued { get; } = Stopwatch.StartNew();
    public TaskCompletionSource<BatchedNoise> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    int _state;   // 0 queued, 1 taken into a batch, 2 cancelled while queued

    /// <summary>The batcher takes the post, unless it was cancelled first.</summary>
    public bool TryTake() => Interlocked.CompareExchange(ref _state, 1, 0) == 0;

    /// <summary>Cancels a post still in the queue (it will not join a batch), unless the batcher took it first.</summary>
    public bool TryCancelQueued() => Interlocked.CompareExchange(ref _state, 2, 0) == 0;
}
