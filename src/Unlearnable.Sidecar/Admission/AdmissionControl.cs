using Microsoft.Extensions.Options;
using Unlearnable.Sidecar.Observability;

namespace Unlearnable.Sidecar.Admission;

/// <summary>
/// Counts the posts whose bodies the server holds, in total and per API key, so memory stays
/// bounded and no client takes every slot. A unary call takes a slot before its body is read
/// (<see cref="AdmissionMiddleware"/>) or is refused; a stream waits for one before reading its
/// next post, and keeps it until that post's answer is written. Streams hold at most
/// <see cref="LimitOptions.StreamSlots"/> of the slots, so sessions waiting for their users' next posts never leave
/// unary calls without one. While the server drains for shutdown nothing new is admitted.
/// </summary>
public sealed class AdmissionControl(IOptions<SidecarOptions> options, SidecarMetrics metrics)
{
    readonly Lock _lock = new();
    readonly Dictionary<string, int> _perKey = [];
    TaskCompletionSource _released = new(TaskCreationOptions.RunContinuationsAsynchronously);
    int _total, _streams;

    public int InFlight { get { lock (_lock) return _total; } }
    public bool Draining { get; private set; }

    /// <summary>From now on nothing is admitted; posts already in keep their slots.</summary>
    public void StartDraining()
    {
        Draining = true;
        lock (_lock) _released.TrySetResult();
    }

    /// <summary>A slot, or null with why when the server or this key is at its limit (counted as a refusal).</summary>
    public Slot? TryEnter(string apiKey, out string refusal)
    {
        var slot = TryTake(apiKey, stream: false, out refusal);
        if (slot is null) metrics.Rejected.WithLabels(Draining ? "draining" : "in_flight").Inc();
        return slot;
    }

    /// <summary>Waits for a slot (a stream's next post); throws <see cref="ServerDrainingException"/> once the server drains.</summary>
    public async Task<Slot> EnterAsync(string apiKey, CancellationToken cancel)
    {
        while (true)
        {
            Task released;
            lock (_lock) released = _released.Task;
            if (TryTake(apiKey, stream: true, out _) is { } slot) return slot;
            if (Draining) throw new ServerDrainingException();
            await released.WaitAsync(cancel);
        }
    }

    Slot? TryTake(string apiKey, bool stream, out string refusal)
    {
        var limits = options.Value.Limits;
        lock (_lock)
        {
            refusal = Draining ? new ServerDrainingException().Message
                : _total >= limits.MaxPostsInFlight ? $"the server holds {_total} posts, its limit (Sidecar:Limits:MaxPostsInFlight {limits.MaxPostsInFlight}); retry later"
                : stream && _streams >= limits.StreamSlots ? $"streams hold {_streams} slots, their share (Sidecar:Limits:StreamShare)"
                : _perKey.GetValueOrDefault(apiKey) >= limits.MaxPostsInFlightPerApiKey
                    ? $"this API key has {limits.MaxPostsInFlightPerApiKey} posts in flight, its share (Sidecar:Limits:MaxPostsInFlightPerApiKey); retry later"
                : "";
            if (refusal.Length > 0) return null;
            _total++;
            if (stream) _streams++;
            _perKey[apiKey] = _perKey.GetValueOrDefault(apiKey) + 1;
            return new Slot(this, apiKey, stream);
        }
    }

    void Leave(string apiKey, bool stream)
    {
        lock (_lock)
        {
            _total--;
            if (stream) _streams--;
            if (--_perKey[apiKey] == 0) _perKey.Remove(apiKey);
            // Wake every waiting stream; each tries again.
            var released = _released;
            _released = new(TaskCreationOptions.RunContinuationsAsynchronously);
            released.TrySetResult();
        }
    }

    public sealed class Slot(AdmissionControl owner, string apiKey, bool stream) : IDisposable
    {
        int _left;
        public void Dispose()
        {
            if (Interlocked.Exchange(ref _left, 1) == 0) owner.Leave(apiKey, stream);
        }
    }
}

public sealed class ServerDrainingException() : Exception("the server is shutting down; retry on another replica");
