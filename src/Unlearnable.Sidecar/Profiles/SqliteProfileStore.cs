using Google.Protobuf;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Options;
using Unlearnable.Contracts.V1;

namespace Unlearnable.Sidecar.Profiles;

/// <summary>
/// Per-user profiles and idempotent results in an embedded SQLite file (WAL, so readers never
/// wait for the writer; a busy timeout, so concurrent writers queue instead of failing). Each
/// call opens a pooled connection, so the store is safe to share between threads. For one
/// process (or processes on one machine sharing the file); replicas share <see cref="PostgresProfileStore"/>.
/// </summary>
public sealed class SqliteProfileStore : IProfileStore
{
    readonly string _connectionString;
    readonly TimeSpan _retention;
    readonly long _maxBytes;
    readonly ExpiryPacer _pacer;
    readonly UserGates _userGates = new();   // the file's users are this process's: an in-process lock holds them

    public SqliteProfileStore(IOptions<SidecarOptions> options)
    {
        var path = Path.GetFullPath(options.Value.Profiles.DatabasePath);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        _connectionString = new SqliteConnectionStringBuilder { DataSource = path, Mode = SqliteOpenMode.ReadWriteCreate, Pooling = true, DefaultTimeout = 30 }.ToString();
        _retention = options.Value.Profiles.ResultRetention;
        _maxBytes = options.Value.Profiles.MaxStoredResultBytes;
        _pacer = new ExpiryPacer(_maxBytes);
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
        return new StoredProfile(userId, (TriggerPolicy)row.GetInt32(0), row.IsDBNull(1) ? null : TriggerIds.Parse(row.GetString(1)),
            row.IsDBNull(2) ? null : row.GetString(2), row.GetInt64(3), row.GetInt64(4), row.GetInt64(5));
    }

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

    public void RecordPost(string userId, int[] trigger, string triggerText)
    {
        using var db = Open();
        Execute(db, """
            UPDATE users SET posts = posts + 1, last_seen_ms = $now,
              sticky_trigger = CASE WHEN trigger_policy = $sticky AND sticky_trigger IS NULL AND $t <> '' THEN $t ELSE sticky_trigger END,
              sticky_trigger_text = CASE WHEN trigger_policy = $sticky AND sticky_trigger IS NULL AND $t <> '' THEN $text ELSE sticky_trigger_text END
            WHERE user_id = $u
            """, ("$u", userId), ("$now", Now), ("$sticky", (int)TriggerPolicy.Sticky), ("$t", TriggerIds.Format(trigger)), ("$text", triggerText));
    }

    public Task<IAsyncDisposable> LockUserAsync(string userId, CancellationToken cancel) => _userGates.EnterAsync(userId, cancel);

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

    public void SaveUserNoise(string userId, int size, sbyte[] pattern)
    {
        using var db = Open();
        Execute(db, """
            INSERT INTO user_noise (user_id, size, pattern, updated_ms) SELECT $u, $s, $p, $now WHERE EXISTS (SELECT 1 FROM users WHERE user_id = $u)
            ON CONFLICT (user_id, size) DO UPDATE SET pattern = $p, updated_ms = $now
            """, ("$u", userId), ("$s", size), ("$p", System.Runtime.InteropServices.MemoryMarshal.AsBytes(pattern.AsSpan()).ToArray()), ("$now", Now));
    }

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

    public SavedResult? SaveResult(string userId, string postId, byte[] requestHash, ProtectResponse response)
    {
        using var db = Open();
        using var insert = Command(db, """
            INSERT INTO results (user_id, post_id, request_hash, response, created_ms)
              SELECT $u, $p, $h, $r, $now WHERE EXISTS (SELECT 1 FROM users WHERE user_id = $u)
            ON CONFLICT (user_id, post_id) DO UPDATE SET request_hash = $h, response = $r, created_ms = $now WHERE results.created_ms < $since
            RETURNING 1
            """, ("$u", userId), ("$p", postId), ("$h", requestHash), ("$r", response.ToByteArray()), ("$now", Now), ("$since", Now - (long)_retention.TotalMilliseconds));
        bool storedNow = insert.ExecuteScalar() is not null;
        if (_pacer.Due(response.CalculateSize()))
        {
            try { Expire(); }
            catch (SqliteException) { }   // busy or full: the hourly sweep tries again
        }
        return FindResult(userId, postId) is { } first ? new SavedResult(first, storedNow) : null;
    }

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
}
