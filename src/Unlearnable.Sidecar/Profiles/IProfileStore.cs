using Unlearnable.Contracts.V1;

namespace Unlearnable.Sidecar.Profiles;

/// <summary>A user as stores and queues know them: a tenant's user id (two tenants' "alice" are two users who never meet).</summary>
public readonly record struct UserKey(string Tenant, string Id);

public sealed record StoredProfile(string UserId, TriggerPolicy Policy, int[]? StickyTrigger, string? StickyTriggerText, long Posts, long CreatedMs, long LastSeenMs);

public sealed record StoredResult(byte[] RequestHash, ProtectResponse Response);

/// <summary>What <see cref="IProfileStore.SaveResult"/> found: the first answer stored for the post, and whether this call stored it.</summary>
public sealed record SavedResult(StoredResult First, bool StoredNow);

/// <summary>
/// Users' profiles, their noise patterns and the answers behind idempotent replays. One store
/// may serve several sidecar replicas at once (PostgreSQL), so every rule that keeps answers
/// consistent lives in the store's own statements, not in one process's memory: the first
/// answer for a post wins, nothing is kept for a deleted user, a sticky trigger is set once.
/// Everything is a tenant's (<see cref="UserKey"/>): no call reads or changes another tenant's users.
/// Implementations: <see cref="SqliteProfileStore"/> (embedded, one process) and
/// <see cref="PostgresProfileStore"/> (replicas); the same contract tests run against both.
/// </summary>
public interface IProfileStore
{
    StoredProfile? Get(UserKey user);

    /// <summary>The user's profile, created with the given policy (<paramref name="fallback"/> when unspecified) if new; a specified policy replaces the stored one.</summary>
    StoredProfile Touch(UserKey user, TriggerPolicy requested, TriggerPolicy fallback = TriggerPolicy.PerPost);

    /// <summary>Counts a protected post; the first trigger of a sticky user becomes their trigger.</summary>
    void RecordPost(UserKey user, int[] trigger, string triggerText);

    /// <summary>A sticky user's trigger, unless one was decided before (called under <see cref="LockUserAsync"/>).</summary>
    void DecideStickyTrigger(UserKey user, int[] trigger, string triggerText);

    /// <summary>
    /// Holds the user for a post that may decide their sticky trigger, across every process
    /// sharing the store: one such post at a time, and the next one reads what it decided.
    /// </summary>
    Task<IAsyncDisposable> LockUserAsync(UserKey user, CancellationToken cancel);

    /// <summary>The users' shared noise patterns at a model size (3·size·size whole 1/255 steps); users without one are missing.</summary>
    Dictionary<UserKey, sbyte[]> UserNoise(IEnumerable<UserKey> users, int size);

    /// <summary>Keeps a user's pattern; not for a user deleted meanwhile (a batch still running when the profile was deleted).</summary>
    void SaveUserNoise(UserKey user, int size, sbyte[] pattern);

    /// <summary>Deletes the user, their noise pattern and every stored result of theirs.</summary>
    (bool Deleted, int Results) Delete(UserKey user);

    /// <summary>The stored answer of a post within the retention time, or null.</summary>
    StoredResult? FindResult(UserKey user, string postId);

    /// <summary>
    /// Keeps a post's answer unless one is stored already (then that first one stays: replays
    /// must equal what was published); null when the user no longer exists (their profile was
    /// deleted while the post ran), so nothing is kept for them.
    /// </summary>
    SavedResult? SaveResult(UserKey user, string postId, byte[] requestHash, ProtectResponse response);

    /// <summary>Drops results past the retention time, then each tenant's oldest beyond its byte budget, then the oldest beyond the store's; returns how many went.</summary>
    int Expire();
}
