using Prometheus;
using Unlearnable.Sidecar.Observability;

namespace Unlearnable.Sidecar.Posts;

/// <summary>
/// Image work of posts (decoding, and carrying noise to full resolution and encoding) runs in the
/// posts' own pipelines, one slot per core at a time, overlapping the model's next batch.
/// </summary>
public sealed class CodecGate(SidecarMetrics metrics)
{
    readonly SemaphoreSlim _slots = new(Capacity);

    public static int Capacity { get; } = Math.Max(1, Environment.ProcessorCount);

    /// <summary>One slot, until the returned handle is disposed.</summary>
    public async Task<IDisposable> HoldAsync(CancellationToken cancel)
    {
        await _slots.WaitAsync(cancel);
        return new Slot(_slots);
    }

    /// <summary>A post's <paramref name="stage"/> (decode or finish): in a slot, on the thread pool, timed.</summary>
    public async Task<T> RunAsync<T>(string stage, Func<T> work, CancellationToken cancel)
    {
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
