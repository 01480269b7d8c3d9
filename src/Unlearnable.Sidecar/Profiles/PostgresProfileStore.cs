using System.Runtime.InteropServices;
using Google.Protobuf;
using Microsoft.Extensions.Options;
using Npgsql;
using Unlearnable.Contracts.V1;
using Unlearnable.Hosting;

namespace Unlearnable.Sidecar.Profiles;

/// <summary>
/// Profiles and idempotent results on a PostgreSQL server that several sidecar replicas share,
/// so a user's sticky trigger, a retried post_id and a deleted profile mean the same thing on
/// every replica. Each rule is one statement (insert-only results, a trigger set once, nothing
/// saved for a user who is gone); a sticky user's first trigger is decided under a session
/// advisory lock keyed by the user, which every replica's lock sees.
/// </summary>
public sealed class PostgresProfileStore : IProfileStore, IDisposable
{
    readonly NpgsqlDataSource _source;
    readonly TimeSpan _retention;
    readonly long _maxBytes;
    readonly ExpiryPacer _pacer;
    readonly UserGates _localGates = new();

    public PostgresProfileStore(IOptions<SidecarOptions> options)
    {
        var profiles = options.Value.Profiles;
        _source = Postgres.Connect(profiles.Store.ConnectionString!, "unlearnable-sidecar");
        _retention = profiles.ResultRetention;
        _maxBytes = profiles.MaxStoredResultBytes;
        _pacer = new ExpiryPacer(_maxBytes);
        Postgres.EnsureSchema(_source, """
            CREATE TABLE IF NOT EXISTS sidecar_users (
              user_id TEXT PRIMARY KEY, trigger_policy INTEGER NOT NULL, sticky_trigger TEXT, sticky_trigger_text TEXT,
              posts BIGINT NOT NULL DEFAULT 0, created_ms BIGINT NOT NULL, last_seen_ms BIGINT NOT NULL);
            CREATE TABLE IF NOT EXISTS sidecar_results (
              user_id TEXT NOT NULL, post_id TEXT NOT NULL, request_hash BYTEA NOT NULL, response BYTEA NOT NULL,
              bytes BIGINT NOT NULL, created_ms BIGINT NOT NULL, PRIMARY KEY (user_id, post_id));
            CREATE INDEX IF NOT EXISTS sidecar_results_created ON sidecar_results (created_ms);
            CREATE TABLE IF NOT EXISTS sidecar_user_noise (
              user_id TEXT NOT NULL, size INTEGER NOT NULL, pattern BYTEA NOT NULL, updated_ms BIGINT NOT NULL,
              PRIMARY KEY (user_id, size));
            """);
    }

    public void Dispose() => _source.Dispose();

    static long Now => DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
    long Since => Now - (long)_retention.TotalMilliseconds;

    NpgsqlCommand Command(string sql, params (string Name, object? Value)[] parameters)
    {
        var command = _source.CreateCommand(sql);
        foreach (var (name, value) in parameters) command.Parameters.AddWithValue(name, value ?? DBNull.Value);
        return command;
    }

    int Execute(string sql, params (string Name, object? Value)[] parameters)
    {
        using var command = Command(sql, parameters);
        return command.ExecuteNonQuery();
    }

    public StoredProfile? Get(string userId)
    {
        using var command = Command("SELECT trigger_policy, sticky_trigger, sticky_trigger_text, posts, created_ms, last_seen_ms FROM sidecar_users WHERE user_id = @u", ("u", userId));
        using var row = command.ExecuteReader();
        if (!row.Read()) return null;
        return new StoredProfile(userId, (TriggerPolicy)row.GetInt32(0), row.IsDBNull(1) ? null : TriggerIds.Parse(row.GetString(1)),
            row.IsDBNull(2) ? null : row.GetString(2), row.GetInt64(3), row.GetInt64(4), row.GetInt64(5));
    }

    public StoredProfile Touch(string userId, TriggerPolicy requested, TriggerPolicy fallback = TriggerPolicy.PerPost)
    {
        var policy = requested == TriggerPolicy.Unspecified ? fallback : requested;
        Execute("""
            INSERT INTO sidecar_users (user_id, trigger_policy, posts, created_ms, last_seen_ms) VALUES (@u, @p, 0, @now, @now)
            ON CONFLICT (user_id) DO UPDATE SET last_seen_ms = @now,
              trigger_policy = CASE WHEN @explicit THEN @p ELSE sidecar_users.trigger_policy END
            """, ("u", userId), ("p", (int)policy), ("now", Now), ("explicit", requested != TriggerPolicy.Unspecified));
        return Get(userId)!;
    }

    public void RecordPost(string userId, int[] trigger, string triggerText) => Execute("""
        UPDATE sidecar_users SET posts = posts + 1, last_seen_ms = @now,
          sticky_trigger = CASE WHEN trigger_policy = @sticky AND sticky_trigger IS NULL AND @t <> '' THEN @t ELSE sticky_trigger END,
          sticky_trigger_text = CASE WHEN trigger_policy = @sticky AND sticky_trigger IS NULL AND @t <> '' THEN @text ELSE sticky_trigger_text END
        WHERE user_id = @u
        """, ("u", userId), ("now", Now), ("sticky", (int)TriggerPolicy.Sticky), ("t", TriggerIds.Format(trigger)), ("text", triggerText));

    public async Task<IAsyncDisposable> LockUserAsync(string userId, CancellationToken cancel)
    {
        // This process's posts of the user queue in memory first, so each replica holds at most one
        // connection per user; that post then takes the user's session lock on the server, which
        // every replica's lock sees. Tried rather than waited for, so a cancelled post stops waiting
        // at once instead of when the server answers.
        var local = await _localGates.EnterAsync(userId, cancel);
        NpgsqlConnection? db = null;
        try
        {
            db = await _source.OpenConnectionAsync(cancel);
            await using var attempt = LockCommand("pg_try_advisory_lock", db, userId);
            while (!(bool)(await attempt.ExecuteScalarAsync(cancel))!) await Task.Delay(25, cancel);
            return new AdvisoryLock(db, userId, local);
        }
        catch
        {
            // The lock may have been granted just as the wait was cancelled: give it back before the
            // connection goes back to the pool (a broken connection is closed, which ends the lock too).
            if (db is not null) await AdvisoryLock.Unlock(db, userId);
            await local.DisposeAsync();
            throw;
        }
    }

    static NpgsqlCommand LockCommand(string function, NpgsqlConnection db, string userId)
    {
        var command = new NpgsqlCommand($"SELECT {function}({Postgres.LockKey})", db);
        command.Parameters.AddWithValue("name", "unlearnable.user:" + userId);
        return command;
    }

    sealed class AdvisoryLock(NpgsqlConnection db, string userId, IAsyncDisposable local) : IAsyncDisposable
    {
        int _released;

        public async ValueTask DisposeAsync()
        {
            if (Interlocked.Exchange(ref _released, 1) != 0) return;
            await Unlock(db, userId);
            await local.DisposeAsync();
        }

        public static async Task Unlock(NpgsqlConnection db, string userId)
        {
            try
            {
                await using var unlock = LockCommand("pg_advisory_unlock", db, userId);
                await unlock.ExecuteScalarAsync(CancellationToken.None);
            }
            catch (Exception e) when (e is NpgsqlException or InvalidOperationException) { }   // the connection is broken: closing it ends the session's locks
            finally { await db.DisposeAsync(); }
        }
    }

    public Dictionary<string, sbyte[]> UserNoise(IEnumerable<string> userIds, int size)
    {
        var found = new Dictionary<string, sbyte[]>();
        using var command = Command("SELECT user_id, pattern FROM sidecar_user_noise WHERE user_id = ANY(@u) AND size = @s", ("u", userIds.Distinct().ToArray()), ("s", size));
        using var row = command.ExecuteReader();
        while (row.Read())
            if (row[1] is byte[] blob && blob.Length == 3 * size * size) found[row.GetString(0)] = MemoryMarshal.Cast<byte, sbyte>(blob).ToArray();
        return found;
    }

    public void SaveUserNoise(string userId, int size, sbyte[] pattern) => Execute("""
        INSERT INTO sidecar_user_noise (user_id, size, pattern, updated_ms) SELECT @u, @s, @p, @now WHERE EXISTS (SELECT 1 FROM sidecar_users WHERE user_id = @u FOR SHARE)
        ON CONFLICT (user_id, size) DO UPDATE SET pattern = @p, updated_ms = @now
        """, ("u", userId), ("s", size), ("p", MemoryMarshal.AsBytes(pattern.AsSpan()).ToArray()), ("now", Now));

    public (bool Deleted, int Results) Delete(string userId)
    {
        using var db = _source.OpenConnection();
        using var transaction = db.BeginTransaction();
        int Run(string sql)
        {
            using var command = new NpgsqlCommand(sql, db, transaction);
            command.Parameters.AddWithValue("u", userId);
            return command.ExecuteNonQuery();
        }
        // The user's row first: it locks the user against a result or pattern being saved for them meanwhile.
        bool deleted = Run("DELETE FROM sidecar_users WHERE user_id = @u") > 0;
        Run("DELETE FROM sidecar_user_noise WHERE user_id = @u");
        int results = Run("DELETE FROM sidecar_results WHERE user_id = @u");
        transaction.Commit();
        return (deleted, results);
    }

    public StoredResult? FindResult(string userId, string postId)
    {
        using var command = Command("SELECT request_hash, response FROM sidecar_results WHERE user_id = @u AND post_id = @p AND created_ms >= @since",
            ("u", userId), ("p", postId), ("since", Since));
        using var row = command.ExecuteReader();
        if (!row.Read()) return null;
        return new StoredResult((byte[])row[0], ProtectResponse.Parser.ParseFrom((byte[])row[1]));
    }

    public SavedResult? SaveResult(string userId, string postId, byte[] requestHash, ProtectResponse response)
    {
        var bytes = response.ToByteArray();
        using var insert = Command("""
            INSERT INTO sidecar_results (user_id, post_id, request_hash, response, bytes, created_ms)
              SELECT @u, @p, @h, @r, @n, @now WHERE EXISTS (SELECT 1 FROM sidecar_users WHERE user_id = @u FOR SHARE)
            ON CONFLICT (user_id, post_id) DO UPDATE SET request_hash = @h, response = @r, bytes = @n, created_ms = @now WHERE sidecar_results.created_ms < @since
            RETURNING 1
            """, ("u", userId), ("p", postId), ("h", requestHash), ("r", bytes), ("n", (long)bytes.Length), ("now", Now), ("since", Since));
        bool storedNow = insert.ExecuteScalar() is not null;
        if (_pacer.Due(bytes.Length))
        {
            try { Expire(); }
            catch (NpgsqlException) { }   // the hourly sweep tries again
        }
        return FindResult(userId, postId) is { } first ? new SavedResult(first, storedNow) : null;
    }

    public int Expire()
    {
        int expired = Execute("DELETE FROM sidecar_results WHERE created_ms < @since", ("since", Since));
        return expired + Execute("""
            DELETE FROM sidecar_results r USING (
              SELECT user_id, post_id, SUM(bytes) OVER (ORDER BY created_ms DESC, user_id DESC, post_id DESC) AS newer_bytes FROM sidecar_results) o
            WHERE r.user_id = o.user_id AND r.post_id = o.post_id AND o.newer_bytes > @budget
            """, ("budget", _maxBytes));
    }
}
