using System.Data.Common;
using System.Runtime.InteropServices;
using Google.Protobuf;
using Unlearnable.Contracts.V1;
using Unlearnable.Hosting;

namespace Unlearnable.Sidecar.Profiles;

/// <summary>
/// One implementation of the profile rules over ADO.NET, in two dialects: <see cref="SqliteProfileStore"/>
/// (embedded, one process) and <see cref="PostgresProfileStore"/> (replicas). Each rule is one statement,
/// so it holds across every process sharing the store: the first stored answer for a post wins, a post is
/// counted only for a stored user, nothing is saved for a user who is gone, a sticky trigger is set once.
/// Each call opens a pooled connection, so a store is safe to share between threads.
/// </summary>
public abstract class ProfileStore : IProfileStore
{
    readonly TimeSpan _retention;
    readonly long _maxBytes;
    readonly ExpiryPacer _pacer;
    readonly UserGates _userGates = new();
    readonly TimeProvider _clock;

    /// <param name="clock">What "now" is for creation times and retention (the system's; tests move a fake one instead of sleeping).</param>
    protected ProfileStore(ProfileOptions profiles, TimeProvider? clock)
    {
        _clock = clock ?? TimeProvider.System;
        _retention = profiles.ResultRetention;
        _maxBytes = profiles.MaxStoredResultBytes;
        _pacer = new ExpiryPacer(_maxBytes);
    }

    /// <summary>Put before every table's name: a PostgreSQL database may hold other services' tables too.</summary>
    protected virtual string TablePrefix => "";

    /// <summary>
    /// Locks the user row a save checks for (" FOR SHARE" in PostgreSQL), so a concurrent delete either
    /// waits for the save (and removes what it saved) or the save sees the user gone; nothing for
    /// SQLite, whose writers take turns.
    /// </summary>
    protected virtual string UserRowLock => "";

    /// <summary>
    /// The column keeping each answer's size, so the byte budget is summed without reading answers
    /// (PostgreSQL's); null where the size is measured from the answer itself (SQLite reads a blob's
    /// length without its content, and its tables have no such column).
    /// </summary>
    protected virtual string? SizeColumn => null;

    /// <summary>
    /// What tells apart results stored in the same millisecond when the byte budget drops the oldest:
    /// the greater counts as newer. The primary key by default; SQLite's rowid follows insertion order.
    /// </summary>
    protected virtual string[] ResultKey => ["user_id", "post_id"];

    protected abstract DbConnection Open();

    string Users => TablePrefix + "users";
    string Results => TablePrefix + "results";
    string Noise => TablePrefix + "user_noise";

    /// <summary>
    /// The tables, in the dialect's names for a 64-bit integer and a byte string; made where missing and
    /// never altered, so files and databases made before keep working.
    /// </summary>
    protected string Schema(string int64, string bytes) => $"""
        CREATE TABLE IF NOT EXISTS {Users} (
          user_id TEXT PRIMARY KEY, trigger_policy INTEGER NOT NULL, sticky_trigger TEXT, sticky_trigger_text TEXT,
          posts {int64} NOT NULL DEFAULT 0, created_ms {int64} NOT NULL, last_seen_ms {int64} NOT NULL);
        CREATE TABLE IF NOT EXISTS {Results} (
          user_id TEXT NOT NULL, post_id TEXT NOT NULL, request_hash {bytes} NOT NULL, response {bytes} NOT NULL,
          {(SizeColumn is null ? "" : $"{SizeColumn} {int64} NOT NULL, ")}created_ms {int64} NOT NULL, PRIMARY KEY (user_id, post_id));
        CREATE INDEX IF NOT EXISTS {Results}_created ON {Results} (created_ms);
        CREATE TABLE IF NOT EXISTS {Noise} (
          user_id TEXT NOT NULL, size INTEGER NOT NULL, pattern {bytes} NOT NULL, updated_ms {int64} NOT NULL,
          PRIMARY KEY (user_id, size));
        """;

    long Now => _clock.GetUtcNow().ToUnixTimeMilliseconds();
    long Since => Now - (long)_retention.TotalMilliseconds;

    protected int Execute(string sql, params (string Name, object? Value)[] parameters)
    {
        using var db = Open();
        using var command = db.Command(sql, parameters);
        return command.ExecuteNonQuery();
    }

    public StoredProfile? Get(string userId)
    {
        using var db = Open();
        using var command = db.Command($"SELECT trigger_policy, sticky_trigger, sticky_trigger_text, posts, created_ms, last_seen_ms FROM {Users} WHERE user_id = @u", ("@u", userId));
        using var row = command.ExecuteReader();
        if (!row.Read()) return null;
        return new StoredProfile(userId, (TriggerPolicy)row.GetInt32(0), row.IsDBNull(1) ? null : TriggerIds.Parse(row.GetString(1)),
            row.IsDBNull(2) ? null : row.GetString(2), row.GetInt64(3), row.GetInt64(4), row.GetInt64(5));
    }

    public StoredProfile Touch(string userId, TriggerPolicy requested, TriggerPolicy fallback = TriggerPolicy.PerPost)
    {
        var policy = requested == TriggerPolicy.Unspecified ? fallback : requested;
        Execute($"""
            INSERT INTO {Users} (user_id, trigger_policy, posts, created_ms, last_seen_ms) VALUES (@u, @p, 0, @now, @now)
            ON CONFLICT (user_id) DO UPDATE SET last_seen_ms = @now,
              trigger_policy = CASE WHEN @explicit THEN @p ELSE {Users}.trigger_policy END
            """, ("@u", userId), ("@p", (int)policy), ("@now", Now), ("@explicit", requested != TriggerPolicy.Unspecified));
        return Get(userId)!;
    }

    public void RecordPost(string userId, int[] trigger, string triggerText) => Execute($"""
        UPDATE {Users} SET posts = posts + 1, last_seen_ms = @now,
          sticky_trigger = CASE WHEN trigger_policy = @sticky AND sticky_trigger IS NULL AND @t <> '' THEN @t ELSE sticky_trigger END,
          sticky_trigger_text = CASE WHEN trigger_policy = @sticky AND sticky_trigger IS NULL AND @t <> '' THEN @text ELSE sticky_trigger_text END
        WHERE user_id = @u
        """, ("@u", userId), ("@now", Now), ("@sticky", (int)TriggerPolicy.Sticky), ("@t", TriggerIds.Format(trigger)), ("@text", triggerText));

    public void DecideStickyTrigger(string userId, int[] trigger, string triggerText) => Execute($"""
        UPDATE {Users} SET sticky_trigger = @t, sticky_trigger_text = @text
        WHERE user_id = @u AND trigger_policy = @sticky AND sticky_trigger IS NULL AND @t <> ''
        """, ("@u", userId), ("@sticky", (int)TriggerPolicy.Sticky), ("@t", TriggerIds.Format(trigger)), ("@text", triggerText));

    /// <summary>This process's posts of the user, one at a time; a store shared by processes adds a lock they all see.</summary>
    public virtual Task<IAsyncDisposable> LockUserAsync(string userId, CancellationToken cancel) => _userGates.EnterAsync(userId, cancel);

    public Dictionary<string, sbyte[]> UserNoise(IEnumerable<string> userIds, int size)
    {
        var found = new Dictionary<string, sbyte[]>();
        var users = userIds.Distinct().ToArray();
        if (users.Length == 0) return found;   // "IN ()" is not SQL everywhere
        // One statement for a batch's users, a parameter each (a batch holds few).
        var names = users.Select((_, i) => $"@u{i}").ToArray();
        using var db = Open();
        using var command = db.Command($"SELECT user_id, pattern FROM {Noise} WHERE size = @s AND user_id IN ({string.Join(", ", names)})",
            [("@s", size), .. users.Select((user, i) => (names[i], (object?)user))]);
        using var row = command.ExecuteReader();
        while (row.Read())
            if (row[1] is byte[] blob && blob.Length == 3 * size * size) found[row.GetString(0)] = MemoryMarshal.Cast<byte, sbyte>(blob).ToArray();
        return found;
    }

    public void SaveUserNoise(string userId, int size, sbyte[] pattern) => Execute($"""
        INSERT INTO {Noise} (user_id, size, pattern, updated_ms) SELECT @u, @s, @p, @now WHERE EXISTS (SELECT 1 FROM {Users} WHERE user_id = @u{UserRowLock})
        ON CONFLICT (user_id, size) DO UPDATE SET pattern = @p, updated_ms = @now
        """, ("@u", userId), ("@s", size), ("@p", MemoryMarshal.AsBytes(pattern.AsSpan()).ToArray()), ("@now", Now));

    public (bool Deleted, int Results) Delete(string userId)
    {
        using var db = Open();
        using var transaction = db.BeginTransaction();
        int Run(string sql)
        {
            using var command = db.Command(sql, ("@u", userId));
            command.Transaction = transaction;
            return command.ExecuteNonQuery();
        }
        // The user's row first: it locks the user against a result or pattern being saved for them meanwhile.
        bool deleted = Run($"DELETE FROM {Users} WHERE user_id = @u") > 0;
        Run($"DELETE FROM {Noise} WHERE user_id = @u");
        int results = Run($"DELETE FROM {Results} WHERE user_id = @u");
        transaction.Commit();
        if (deleted || results > 0) Erase(db);
        return (deleted, results);
    }

    /// <summary>After a user's rows are deleted: make the store let go of the bytes they were held in, where it can.</summary>
    protected virtual void Erase(DbConnection db) { }

    public StoredResult? FindResult(string userId, string postId)
    {
        using var db = Open();
        using var command = db.Command($"SELECT request_hash, response FROM {Results} WHERE user_id = @u AND post_id = @p AND created_ms >= @since",
            ("@u", userId), ("@p", postId), ("@since", Since));
        using var row = command.ExecuteReader();
        if (!row.Read()) return null;
        return new StoredResult((byte[])row[0], ProtectResponse.Parser.ParseFrom((byte[])row[1]));
    }

    public SavedResult? SaveResult(string userId, string postId, byte[] requestHash, ProtectResponse response)
    {
        var answer = response.ToByteArray();
        // Where the dialect keeps each answer's size, it is stored (and replaced) with the answer.
        var (sizeColumn, sizeValue, setSize) = SizeColumn is { } size ? ($", {size}", ", @n", $", {size} = @n") : ("", "", "");
        bool storedNow;
        using (var db = Open())
        using (var insert = db.Command($"""
            INSERT INTO {Results} (user_id, post_id, request_hash, response, created_ms{sizeColumn})
              SELECT @u, @p, @h, @r, @now{sizeValue} WHERE EXISTS (SELECT 1 FROM {Users} WHERE user_id = @u{UserRowLock})
            ON CONFLICT (user_id, post_id) DO UPDATE SET request_hash = @h, response = @r, created_ms = @now{setSize} WHERE {Results}.created_ms < @since
            RETURNING 1
            """, ("@u", userId), ("@p", postId), ("@h", requestHash), ("@r", answer), ("@n", (long)answer.Length), ("@now", Now), ("@since", Since)))
            storedNow = insert.ExecuteScalar() is not null;
        if (_pacer.Due(answer.Length))
        {
            try { Expire(); }
            catch (DbException) { }   // busy, full or unreachable: the hourly sweep tries again
        }
        return FindResult(userId, postId) is { } first ? new SavedResult(first, storedNow) : null;
    }

    public int Expire()
    {
        int expired = Execute($"DELETE FROM {Results} WHERE created_ms < @since", ("@since", Since));
        string key = string.Join(", ", ResultKey), newestFirst = string.Join(", ", ResultKey.Select(column => column + " DESC"));
        return expired + Execute($"""
            DELETE FROM {Results} WHERE ({key}) IN (
              SELECT {key} FROM (SELECT {key}, SUM({SizeColumn ?? "length(response)"}) OVER (ORDER BY created_ms DESC, {newestFirst}) AS newer_bytes FROM {Results}) AS ranked
              WHERE newer_bytes > @budget)
            """, ("@budget", _maxBytes));
    }
}
