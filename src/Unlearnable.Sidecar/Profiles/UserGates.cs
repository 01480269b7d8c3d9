namespace Unlearnable.Sidecar.Profiles;

/// <summary>
/// One gate per user, made when first asked for and dropped when nobody holds or waits for it,
/// so one user's wait never holds up another's and idle users cost nothing.
/// </summary>
public sealed class UserGates
{
    sealed class Gate
    {
        public readonly SemaphoreSlim Semaphore = new(1, 1);
        public int Users;
    }

    readonly Lock _lock = new();
    readonly Dictionary<UserKey, Gate> _gates = [];

    public async Task<IAsyncDisposable> EnterAsync(UserKey userId, CancellationToken cancel)
    {
        Gate gate;
        lock (_lock)
        {
            if (!_gates.TryGetValue(userId, out gate!)) _gates[userId] = gate = new Gate();
            gate.Users++;
        }
        try { await gate.Semaphore.WaitAsync(cancel); }
        catch
        {
            Leave(userId, gate);
            throw;
        }
        return new Held(this, userId, gate);
    }

    void Leave(UserKey userId, Gate gate)
    {
        lock (_lock)
            if (--gate.Users == 0) _gates.Remove(userId);
    }

    public int Count { get { lock (_lock) return _gates.Count; } }

    sealed class Held(UserGates owner, UserKey userId, Gate gate) : IAsyncDisposable
    {
        int _released;
        public ValueTask DisposeAsync()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0)
            {
                gate.Semaphore.Release();
                owner.Leave(userId, gate);
            }
            return ValueTask.CompletedTask;
        }
    }
}
