using Microsoft.Extensions.Options;

namespace Unlearnable.Sidecar.Admission;

/// <summary>
/// One byte budget (<see cref="LimitOptions.PostMemoryBytes"/>) for what posts hold between admission and their written
/// answer: a unary body as its frame declares it (twice: the buffer and gRPC's parsed copy), a stream's message once read
/// (likewise), the decoded image while it waits for its batch (4 bytes a pixel), and the answer until it is written. A
/// tenant holds at most its share of it (the budget × MaxPostsInFlightPerTenant / MaxPostsInFlight), so one tenant's
/// large or slow posts never leave another's refused. What can still be refused is refused when either budget is spent
/// (<see cref="TryHold"/>); what is already done — an answer made — is counted whatever the budget (<see cref="Count"/>),
/// and holds new work back until it is let go. Image work (decoding and finishing) has its own budget, <see cref="Posts.CodecMemory"/>.
/// </summary>
public sealed class PostMemory(IOptions<SidecarOptions> options)
{
    readonly Lock _lock = new();
    readonly Dictionary<string, long> _perTenant = [];
    long _held;

    public long HeldBytes { get { lock (_lock) return _held; } }
    public long Budget => options.Value.Limits.PostMemoryBytes;
    public long TenantBudget => (long)(Budget * options.Value.Limits.TenantShare);

    /// <summary>
    /// Holds <paramref name="bytes"/> for <paramref name="tenant"/> unless the server's or the tenant's budget would be
    /// passed (null then); a post may pass them alone, so an image larger than a budget is still served when nothing else is held.
    /// </summary>
    public Hold? TryHold(string tenant, long bytes)
    {
        lock (_lock)
        {
            long mine = _perTenant.GetValueOrDefault(tenant);
            if ((_held > 0 && _held + bytes > Budget) || (mine > 0 && mine + bytes > TenantBudget)) return null;
            return Add(tenant, bytes);
        }
    }

    /// <summary>Counts <paramref name="bytes"/> the server holds already; never refused.</summary>
    public Hold Count(string tenant, long bytes)
    {
        lock (_lock) return Add(tenant, bytes);
    }

    Hold Add(string tenant, long bytes)
    {
        _held += bytes;
        _perTenant[tenant] = _perTenant.GetValueOrDefault(tenant) + bytes;
        return new Hold(this, tenant, bytes);
    }

    /// <summary>Why a post of <paramref name="tenant"/> was refused, naming the setting.</summary>
    public string Refusal(string tenant, string what, long bytes)
    {
        lock (_lock)
            return $"posts hold {_held:N0} bytes of this server's {Budget:N0} (Sidecar:Limits:PostMemoryBytes), and this API key's tenant's " +
                $"{_perTenant.GetValueOrDefault(tenant):N0} of its share of {TenantBudget:N0}; {what} needs {bytes:N0} more; retry later";
    }

    public sealed class Hold(PostMemory owner, string tenant, long bytes) : IDisposable
    {
        int _released;
        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) != 0) return;
            lock (owner._lock)
            {
                owner._held -= bytes;
                if ((owner._perTenant[tenant] -= bytes) == 0) owner._perTenant.Remove(tenant);
            }
        }
    }
}
