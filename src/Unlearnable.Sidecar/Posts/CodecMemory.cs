using Microsoft.Extensions.Options;

namespace Unlearnable.Sidecar.Posts;

/// <summary>
/// The memory image work takes while it runs, by pixels and stage: decoding holds the decoded bitmap and an upright
/// copy, finishing the full-size noise, the perturbed copy and the encoder's buffers. A stage waits (first come, first
/// served) until its bytes fit in <see cref="LimitOptions.CodecMemoryBytes"/>, so a small file that decodes to 50
/// megapixels costs the server its budget, not its pod. Work in a stage always ends, so waiting never deadlocks; the
/// start-up check makes sure the largest image allowed fits on its own.
/// </summary>
public sealed class CodecMemory(IOptions<SidecarOptions> options)
{
    /// <summary>
    /// Bytes a stage takes per pixel at its peak. Finishing: the hardening review measured about 33 (a 294 KB JPEG of
    /// 12,000 × 4,166 pixels took the process 1.2 GiB more). Decoding: the RGBA bitmap and, for a rotated photo, its
    /// upright copy, 4 bytes a pixel each.
    /// </summary>
    public static readonly IReadOnlyDictionary<string, int> BytesPerPixel = new Dictionary<string, int> { ["decode"] = 8, ["finish"] = 33 };

    readonly Lock _lock = new();
    readonly LinkedList<(long Bytes, TaskCompletionSource Ready)> _waiting = [];
    long _held;

    public long Budget => options.Value.Limits.CodecMemory;
    public long HeldBytes { get { lock (_lock) return _held; } }

    /// <summary>The bytes <paramref name="stage"/> takes for an image of <paramref name="pixels"/>.</summary>
    public static long Cost(string stage, long pixels) => pixels * BytesPerPixel[stage];

    /// <summary>Waits until <paramref name="bytes"/> fit (or nothing else is held), then holds them until disposed.</summary>
    public async Task<IDisposable> HoldAsync(long bytes, CancellationToken cancel)
    {
        TaskCompletionSource ready;
        LinkedListNode<(long, TaskCompletionSource)> node;
        lock (_lock)
        {
            if (_waiting.Count == 0 && Fits(bytes))
            {
                _held += bytes;
                return new Held(this, bytes);
            }
            ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
            node = _waiting.AddLast((bytes, ready));
        }
        try
        {
            await ready.Task.WaitAsync(cancel);
            return new Held(this, bytes);
        }
        catch (OperationCanceledException)
        {
            lock (_lock)
            {
                if (node.List is not null)
                {
                    _waiting.Remove(node);   // still waiting: leaves the line, and those behind it may now fit
                    Wake();
                }
                else if (ready.Task.IsCompletedSuccessfully) Release(bytes);   // granted just as it was cancelled: gives it back
            }
            throw;
        }
    }

    bool Fits(long bytes) => _held == 0 || _held + bytes <= Budget;

    void Release(long bytes)
    {
        _held -= bytes;
        Wake();
    }

    // Grants the waiters in order while they fit: the first in line is never passed by a smaller one.
    void Wake()
    {
        while (_waiting.First is { } first && Fits(first.Value.Bytes))
        {
            _waiting.RemoveFirst();
            _held += first.Value.Bytes;
            first.Value.Ready.TrySetResult();
        }
    }

    sealed class Held(CodecMemory owner, long bytes) : IDisposable
    {
        int _released;
        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) != 0) return;
            lock (owner._lock) owner.Release(bytes);
        }
    }
}
