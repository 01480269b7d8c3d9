using Microsoft.Extensions.Options;
using Unlearnable.Sidecar.Observability;

namespace Unlearnable.Sidecar.Admission;

/// <summary>
/// Counts the posts whose bodies the server holds, in total and per tenant (whoever's keys they came with), so memory stays
/// bounded and no client takes every slot. A unary call takes a slot before its body is read
/// (<see cref="AdmissionMiddleware"/>) or is refused; a stream waits for one before reading its
/// next post, and keeps it until that post's answer is written. Streams hold at most
/// <see cref="LimitOptions.StreamSlots"/> of the slots, and one tenant's streams at most its share of those
/// (<see cref="LimitOptions.TenantStreamSlots"/>), so streams never leave unary calls without one, nor one tenant's
/// sessions (idle, or not reading their answers) every other tenant's streams. While the server drains for shutdown
/// nothing new is admitted.
/// </summary>
public sealed class AdmissionControl(IOptions<SidecarOptions> options, SidecarMetrics metrics)
{
    readonly Lock _lock = new();
    readonly Dictionary<string, int> _perTenant = [], _streamsPerTenant = [];
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

    /// <summary>A slot, or null with why when the server or this tenant is at its limit (counted as a refusal).</summary>
    public Slot? TryEnter(string tenant, out string refusal)
    {
        var slot = TryTake(tenant, stream: false, out refusal);
        if (slot is null) metrics.Rejected.WithLabels(Draining ? "draining" : "in_flight").Inc();
        return slot;
    }

    /// <summary>Waits for a slot (a stream's next post); throws <see cref="ServerDrainingException"/> once the server drains.</summary>
    public async Task<Slot> EnterAsync(string tenant, CancellationToken cancel)
    {
        while (true)
        {
            Task released;
            lock (_lock) released = _released.Task;
            if (TryTake(tenant, stream: true, out _) is { } slot) return slot;
            if (Draining) throw new ServerDrainingException();
            await released.WaitAsync(cancel);
        }
    }

    Slot? TryTake(string tenant, bool stream, out string refusal)
    {
        var limits = options.Value.Limits;
        lock (_lock)
        {
            refusal = Draining ? new ServerDrainingException().Message
                : _total >= limits.MaxPostsInFlight ? $"the server holds {_total} posts, its limit (Sidecar:Limits:MaxPostsInFlight {limits.MaxPostsInFlight}); retry later"
                : stream && _streams >= limits.StreamSlots ? $"streams hold {_streams} slots, their share (Sidecar:Limits:StreamShare)"
                : stream && _streamsPerTenant.GetValueOrDefault(tenant) >= limits.TenantStreamSlots
                    ? $"this API key's tenant's streams hold {limits.TenantStreamSlots} slots, its share of the streams' (Sidecar:Limits:StreamShare × MaxPostsInFlightPerTenant / MaxPostsInFlight)"
                : _perTenant.GetValueOrDefault(tenant) >= limits.MaxPostsInFlightPerTenant
                    ? $"this API key's tenant has {limits.MaxPostsInFlightPerTenant} posts in flight, its share (Sidecar:Limits:MaxPostsInFlightPerTenant); retry later"
                : "";
            if (refusal.Length > 0) return null;
            _total++;
            if (stream)
            {
                _streams++;
                _streamsPerTenant[tenant] = _streamsPerTenant.GetValueOrDefault(tenant) + 1;
            }
            _perTenant[tenant] = _perTenant.GetValueOrDefault(tenant) + 1;
            return new Slot(this, tenant, stream);
        }
    }

    void Leave(string tenant, bool stream)
    {
        lock (_lock)
        {
            _total--;
            if (stream)
            {
                _streams--;
                if (--_streamsPerTenant[tenant] == 0) _streamsPerTenant.Remove(tenant);
            }
            if (--_perTenant[tenant] == 0) _perTenant.Remove(tenant);
            // Wake every waiting stream; each tries again.
            var released = _released;
            _released = new(TaskCreationOptions.RunContinuationsAsynchronously);
            released.TrySetResult();
        }
    }

    public sealed class Slot(AdmissionControl owner, string tenant, bool stream) : IDisposable
    {
        int _left;
        public void Dispose()
        {
            if (Interlocked.Exchange(ref _left, 1) == 0) owner.Leave(tenant, stream);
        }
    }
}

public sealed class ServerDrainingException() : Exception("the server is shutting down; retry on another replica");
