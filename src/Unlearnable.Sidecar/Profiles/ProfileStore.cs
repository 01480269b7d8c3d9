using Google.Protobuf;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Options;
using Unlearnable.Contracts.V1;

namespace Unlearnable.Sidecar.Profiles;

public sealed record StoredProfile(string UserId, TriggerPolicy Policy, int[]? StickyTrigger, string? StickyTriggerText, long Posts, long CreatedMs, long LastSeenMs);

public sealed record StoredResult(byte[] RequestHash, ProtectResponse Response);

/// <summary>
/// Per-user profiles and idempotent results in an embedded SQLite file (WAL, so readers never
/// wait for the writer; a busy timeout, so concurrent writers queue instead of failing). Each
/// call opens a pooled connection, so the store is safe to share between threads.
/// </summary>
public sealed class ProfileStore
{
    readonly string _connectionString;
    readonly TimeSpan _retention;
    readonly long _maxBytes;
    long _bytesSinceTrim;

    public ProfileStore(IOptions<SidecarOptions> options)
    {
        var path = Path.GetFullPath(options.Value.Profiles.DatabasePath);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        _connectionString = new SqliteConnectionStringBuilder { DataSource = path, Mode = SqliteOpenMode.ReadWriteCreate, Pooling = true, DefaultTimeout = 30 }.ToString();
        _retention = options.Value.Profiles.ResultRetention;
        _maxBytes = options.Value.Profiles.MaxStoredResultBytes;
        using var db = Open();
        Execute(db, """
            PRAGMA journal_mode = WAL;
            CREATE TABLE IF NOT EXISTS users (
              user_id TEXT PRIMARY KEY, trigger_policy INTEGER NOT NULL, sticky_trigger TEXT, sticky_trigger_text TEXT,
              posts INTEGER NOT NULL DEFAULT 0, created_ms INTEGER NOT NULL, last_seen_ms INTEGER NOT NULL);
            CREATE TABLE IF NOT EXISTS results (
              user_id TEXT NOT NULL, post_id TEXT NOT NULL, request_hash BLOB NOT NULL, response BLOB NOT NULL, created_ms INTEGER NOT NULL,
              PRIMARY KEY (user_id, post_id));
            CREATE INDEX IF NOT EXISTS results_created ON results (created_ms);
            CREATE TABLE IF NOT EXISTS user_noise (
              user_id TEXT NOT NULL, size INTEGER NOT NULL, pattern BLOB NOT NULL, updated_ms INTEGER NOT NULL,
              PRIMARY KEY (user_id, size));
            """);
    }

    SqliteConnection Open()
    {
        var db = new SqliteConnection(_connectionString);
        db.Open();
        Execute(db, "PRAGMA busy_timeout = 30000;");
        return db;
    }

    static void Execute(SqliteConnection db, string sql, params (string Name, object? Value)[] parameters)
    {
        using var command = Command(db, sql, parameters);
        command.ExecuteNonQuery();
    }

    static SqliteCommand Command(SqliteConnection db, string sql, params (string Name, object? Value)[] parameters)
    {
        var command = db.CreateCommand();
        command.CommandText = sql;
        foreach (var (name, value) in parameters) command.Parameters.AddWithValue(name, value ?? DBNull.Value);
        return command;
    }

    static long Now => DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();

    public StoredProfile? Get(string userId)
    {
        using var db = Open();
        using var command = Command(db, "SELECT trigger_policy, sticky_trigger, sticky_trigger_text, posts, created_ms, last_seen_ms FROM users WHERE user_id = $u", ("$u", userId));
        using var row = command.ExecuteReader();
        if (!row.Read()) return null;
        return new StoredProfile(userId, (TriggerPolicy)row.GetInt32(0), row.IsDBNull(1) ? null : ParseIds(row.GetString(1)),
            row.IsDBNull(2) ? null : row.GetString(2), row.GetInt64(3), row.GetInt64(4), row.GetInt64(5));
    }

    /// <summary>The user's profile, created with the given policy (<paramref name="fallback"/> when unspecified) if new; a specified policy replaces the stored one.</summary>
    public StoredProfile Touch(string userId, TriggerPolicy requested, TriggerPolicy fallback = TriggerPolicy.PerPost)
    {
        using var db = Open();
        long now = Now;
        var policy = requested == TriggerPolicy.Unspecified ? fallback : requested;
        Execute(db, """
            INSERT INTO users (user_id, trigger_policy, posts, created_ms, last_seen_ms) VALUES ($u, $p, 0, $now, $now)
            ON CONFLICT (user_id) DO UPDATE SET last_seen_ms = $now,
              trigger_policy = CASE WHEN $explicit THEN $p ELSE trigger_policy END
            """, ("$u", userId), ("$p", (int)policy), ("$now", now), ("$explicit", requested != TriggerPolicy.Unspecified));
        return Get(userId)!;
    }

    /// <summary>Counts a protected post; the first trigger of a sticky user becomes their trigger.</summary>
    public void RecordPost(string userId, int[] trigger, string triggerText)
    {
        using var db = Open();
        Execute(db, """
            UPDATE users SET posts = posts + 1, last_seen_ms = $now,
              sticky_trigger = CASE WHEN trigger_policy = $sticky AND sticky_trigger IS NULL AND $t <> '' THEN $t ELSE sticky_trigger END,
              sticky_trigger_text = CASE WHEN trigger_policy = $sticky AND sticky_trigger IS NULL AND $t <> '' THEN $text ELSE sticky_trigger_text END
            WHERE user_id = $u
            """, ("$u", userId), ("$now", Now), ("$sticky", (int)TriggerPolicy.Sticky), ("$t", string.Join(',', trigger)), ("$text", triggerText));
    }

    /// <summary>
    /// The users' shared noise patterns at a model size (3·size·size values in whole 1/255 steps, as
    /// published images have no finer ones); users without one are missing from the answer.
    /// </summary>
    public Dictionary<string, sbyte[]> UserNoise(IEnumerable<string> userIds, int size)
    {
        using var db = Open();
        var found = new Dictionary<string, sbyte[]>();
        foreach (var user in userIds.Distinct())
        {
            using var command = Command(db, "SELECT pattern FROM user_noise WHERE user_id = $u AND size = $s", ("$u", user), ("$s", size));
            if (command.ExecuteScalar() is byte[] blob && blob.Length == 3 * size * size) found[user] = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, sbyte>(blob).ToArray();
        }
        return found;
    }

    /// <summary>Keeps a user's pattern; not for a user deleted meanwhile (a batch still running when the profile was deleted).</summary>
    public void SaveUserNoise(string userId, int size, sbyte[] pattern)
    {
        using var db = Open();
        Execute(db, """
            INSERT INTO user_noise (user_id, size, pattern, updated_ms) SELECT $u, $s, $p, $now WHERE EXISTS (SELECT 1 FROM users WHERE user_id = $u)
            ON CONFLICT (user_id, size) DO UPDATE SET pattern = $p, updated_ms = $now
            """, ("$u", userId), ("$s", size), ("$p", System.Runtime.InteropServices.MemoryMarshal.AsBytes(pattern.AsSpan()).ToArray()), ("$now", Now));
    }

    /// <summary>Deletes the user, their noise pattern and every stored result of theirs.</summary>
    public (bool Deleted, int Results) Delete(string userId)
    {
        using var db = Open();
        using var transaction = db.BeginTransaction();
        using var noise = Command(db, "DELETE FROM user_noise WHERE user_id = $u", ("$u", userId));
        noise.Transaction = transaction;
        noise.ExecuteNonQuery();
        using var results = Command(db, "DELETE FROM results WHERE user_id = $u", ("$u", userId));
        results.Transaction = transaction;
        int resultCount = results.ExecuteNonQuery();
        using var users = Command(db, "DELETE FROM users WHERE user_id = $u", ("$u", userId));
        users.Transaction = transaction;
        bool deleted = users.ExecuteNonQuery() > 0;
        transaction.Commit();
        return (deleted, resultCount);
    }

    public StoredResult? FindResult(string userId, string postId)
    {
        using var db = Open();
        using var command = Command(db, "SELECT request_hash, response FROM results WHERE user_id = $u AND post_id = $p AND created_ms >= $since",
            ("$u", userId), ("$p", postId), ("$since", Now - (long)_retention.TotalMilliseconds));
        using var row = command.ExecuteReader();
        if (!row.Read()) return null;
        return new StoredResult((byte[])row[0], ProtectResponse.Parser.ParseFrom((byte[])row[1]));
    }

    /// <summary>
    /// Keeps a post's answer unless one is stored already (then that first one stays: replays
    /// must equal what was published), and returns the stored answer; null when the user no
    /// longer exists (their profile was deleted while the post ran), so nothing is kept for them.
    /// </summary>
    public StoredResult? SaveResult(string userId, string postId, byte[] requestHash, ProtectResponse response)
    {
        using var db = Open();
        Execute(db, """
            INSERT INTO results (user_id, post_id, request_hash, response, created_ms)
              SELECT $u, $p, $h, $r, $now WHERE EXISTS (SELECT 1 FROM users WHERE user_id = $u)
            ON CONFLICT (user_id, post_id) DO UPDATE SET request_hash = $h, response = $r, created_ms = $now WHERE results.created_ms < $since
            """, ("$u", userId), ("$p", postId), ("$h", requestHash), ("$r", response.ToByteArray()), ("$now", Now), ("$since", Now - (long)_retention.TotalMilliseconds));
        // A flood of large answers must not wait for the hourly sweep to be held to the budget.
        if (Interlocked.Add(ref _bytesSinceTrim, response.CalculateSize()) > _maxBytes / 8)
        {
            Interlocked.Exchange(ref _bytesSinceTrim, 0);
            try { Expire(); }
            catch (SqliteException) { }   // busy or full: the hourly sweep tries again
        }
        return FindResult(userId, postId);
    }

    /// <summary>
    /// Drops results past the retention time, then the oldest ones beyond the byte budget;
    /// returns how many went.
    /// </summary>
    public int Expire()
    {
        using var db = Open();
        using var old = Command(db, "DELETE FROM results WHERE created_ms < $since", ("$since", Now - (long)_retention.TotalMilliseconds));
        int expired = old.ExecuteNonQuery();
        using var overBudget = Command(db, """
            DELETE FROM results WHERE rowid IN (
              SELECT rowid FROM (SELECT rowid, SUM(length(response)) OVER (ORDER BY created_ms DESC, rowid DESC) AS newer_bytes FROM results)
              WHERE newer_bytes > $budget)
            """, ("$budget", _maxBytes));
        return expired + overBudget.ExecuteNonQuery();
    }

    static int[] ParseIds(string text) => text.Split(',', StringSplitOptions.RemoveEmptyEntries).Select(x => int.Parse(x, System.Globalization.CultureInfo.InvariantCulture)).ToArray();
}
