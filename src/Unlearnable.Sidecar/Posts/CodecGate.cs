using Prometheus;
using Unlearnable.Sidecar.Observability;

namespace Unlearnable.Sidecar.Posts;

/// <summary>
/// Image work of posts (decoding, and carrying noise to full resolution and encoding) runs in the
/// posts' own pipelines, one slot per core at a time, overlapping the model's next batch, and each within
/// <see cref="CodecMemory"/>'s budget for its pixels and stage.
/// </summary>
public sealed class CodecGate(SidecarMetrics metrics, CodecMemory memory)
{
    readonly SemaphoreSlim _slots = new(Capacity);

    public static int Capacity { get; } = Math.Max(1, Environment.ProcessorCount);

    /// <summary>One slot, until the returned handle is disposed.</summary>
    public async Task<IDisposable> HoldAsync(CancellationToken cancel)
    {
        await _slots.WaitAsync(cancel);
        return new Slot(_slots);
    }

    /// <summary>A post's <paramref name="stage"/> (decode or finish) of an image of <paramref name="pixels"/>: with its memory, in a slot, on the thread pool, timed.</summary>
    public async Task<T> RunAsync<T>(string stage, long pixels, Func<T> work, CancellationToken cancel)
    {
        using var bytes = await memory.HoldAsync(CodecMemory.Cost(stage, pixels), cancel);
        using var slot = await HoldAsync(cancel);
        using var timer = metrics.CodecSeconds.WithLabels(stage).NewTimer();
        return await Task.Run(work, cancel);
    }

    sealed class Slot(SemaphoreSlim slots) : IDisposable
    {
        int _released;
        public void Dispose() { if (Interlocked.Exchange(ref _released, 1) == 0) slots.Release(); }
    }
}
