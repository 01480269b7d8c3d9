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
    readonly long _maxBytes, _maxTenantBytes;
    readonly ExpiryPacer _pacer;
    readonly UserGates _userGates = new();
    readonly TimeProvider _clock;
    readonly string? _legacyTenant;

    /// <param name="clock">What "now" is for creation times and retention (the system's; tests move a fake one instead of sleeping).</param>
    /// <param name="keys">The tenants (their count sizes each one's share of the byte budget) and who owns rows stored before tenants; none = one open tenant.</param>
    protected ProfileStore(ProfileOptions profiles, TimeProvider? clock, ApiKeyPolicy? keys)
    {
        _clock = clock ?? TimeProvider.System;
        _retention = profiles.ResultRetention;
        _maxBytes = profiles.MaxStoredResultBytes;
        _maxTenantBytes = profiles.TenantBudget(keys?.StoringTenants ?? 1);
        _pacer = new ExpiryPacer(Math.Min(_maxBytes, _maxTenantBytes));
        _legacyTenant = keys is null ? ApiKeyPolicy.OpenTenant : keys.LegacyTenant;
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
    protected virtual string[] ResultKey => ["tenant", "user_id", "post_id"];

    protected abstract DbConnection Open();

    string Users => TablePrefix + "users";
    string Results => TablePrefix + "results";
    string Noise => TablePrefix + "user_noise";

    /// <summary>The names of a table's columns (@t: the table), none when it does not exist.</summary>
    protected abstract string ColumnsSql { get; }

    /// <summary>
    /// The tables, in the dialect's names for a 64-bit integer and a byte string; made where missing. Tables from before
    /// tenants (no tenant column) are rebuilt with their rows given to the legacy tenant, in the same transaction.
    /// </summary>
    protected void EnsureSchema(DbTransaction transaction, string int64, string bytes)
    {
        int Run(string sql, params (string, object?)[] parameters)
        {
            using var command = transaction.Command(sql, parameters);
            return command.ExecuteNonQuery();
        }
        List<string> ColumnsOf(string table)
        {
            using var command = transaction.Command(ColumnsSql, ("@t", table));
            using var row = command.ExecuteReader();
            var columns = new List<string>();
            while (row.Read()) columns.Add(row.GetString(0));
            return columns;
        }
        var old = new[] { Users, Results, Noise }.Select(table => (Table: table, Columns: ColumnsOf(table)))
            .Where(t => t.Columns.Count > 0 && !t.Columns.Contains("tenant")).ToList();
        if (old.Count > 0)
        {
            if (_legacyTenant is null)
                throw new InvalidOperationException("the profile store holds users from before tenants and several tenants are configured: " +
                    "name the one who owns them in Sidecar:Auth:LegacyTenant");
            // Copied aside and dropped rather than renamed: a renamed table keeps its indexes' names, which the new ones need.
            foreach (var (table, _) in old)
            {
                Run($"CREATE TABLE {table}_before_tenants AS SELECT * FROM {table}");
                Run($"DROP TABLE {table}");
            }
        }
        Run(Schema(int64, bytes));
        foreach (var (table, columns) in old)
        {
            string list = string.Join(", ", columns);
            Run($"INSERT INTO {table} (tenant, {list}) SELECT @tenant, {list} FROM {table}_before_tenants", ("@tenant", _legacyTenant));
            Run($"DROP TABLE {table}_before_tenants");
        }
    }

    string Schema(string int64, string bytes) => $"""
        CREATE TABLE IF NOT EXISTS {Users} (
          tenant TEXT NOT NULL, user_id TEXT NOT NULL, trigger_policy INTEGER NOT NULL, sticky_trigger TEXT, sticky_trigger_text TEXT,
          posts {int64} NOT NULL DEFAULT 0, created_ms {int64} NOT NULL, last_seen_ms {int64} NOT NULL, PRIMARY KEY (tenant, user_id));
        CREATE TABLE IF NOT EXISTS {Results} (
          tenant TEXT NOT NULL, user_id TEXT NOT NULL, post_id TEXT NOT NULL, request_hash {bytes} NOT NULL, response {bytes} NOT NULL,
          {(SizeColumn is null ? "" : $"{SizeColumn} {int64} NOT NULL, ")}created_ms {int64} NOT NULL, PRIMARY KEY (tenant, user_id, post_id));
        CREATE INDEX IF NOT EXISTS {Results}_created ON {Results} (created_ms);
        CREATE TABLE IF NOT EXISTS {Noise} (
          tenant TEXT NOT NULL, user_id TEXT NOT NULL, size INTEGER NOT NULL, pattern {bytes} NOT NULL, updated_ms {int64} NOT NULL,
          PRIMARY KEY (tenant, user_id, size));
        """;

    long Now => _clock.GetUtcNow().ToUnixTimeMilliseconds();
    long Since => Now - (long)_retention.TotalMilliseconds;

    protected int Execute(string sql, params (string Name, object? Value)[] parameters)
    {
        using var db = Open();
        using var command = db.Command(sql, parameters);
        return command.ExecuteNonQuery();
    }

    /// <summary>The parameters naming a user: @tn (tenant) and @u (id).</summary>
    static (string, object?)[] Who(UserKey user) => [("@tn", user.Tenant), ("@u", user.Id)];
    const string IsUser = "tenant = @tn AND user_id = @u";

    public StoredProfile? Get(UserKey user)
    {
        using var db = Open();
        using var command = db.Command($"SELECT trigger_policy, sticky_trigger, sticky_trigger_text, posts, created_ms, last_seen_ms FROM {Users} WHERE {IsUser}", Who(user));
        using var row = command.ExecuteReader();
        if (!row.Read()) return null;
        return new StoredProfile(user.Id, (TriggerPolicy)row.GetInt32(0), row.IsDBNull(1) ? null : TriggerIds.Parse(row.GetString(1)),
            row.IsDBNull(2) ? null : row.GetString(2), row.GetInt64(3), row.GetInt64(4), row.GetInt64(5));
    }

    public StoredProfile Touch(UserKey user, TriggerPolicy requested, TriggerPolicy fallback = TriggerPolicy.PerPost)
    {
        var policy = requested == TriggerPolicy.Unspecified ? fallback : requested;
        Execute($"""
            INSERT INTO {Users} (tenant, user_id, trigger_policy, posts, created_ms, last_seen_ms) VALUES (@tn, @u, @p, 0, @now, @now)
            ON CONFLICT (tenant, user_id) DO UPDATE SET last_seen_ms = @now,
              trigger_policy = CASE WHEN @explicit THEN @p ELSE {Users}.trigger_policy END
            """, [.. Who(user), ("@p", (int)policy), ("@now", Now), ("@explicit", requested != TriggerPolicy.Unspecified)]);
        return Get(user)!;
    }

    public void RecordPost(UserKey user, int[] trigger, string triggerText) => Execute($"""
        UPDATE {Users} SET posts = posts + 1, last_seen_ms = @now,
          sticky_trigger = CASE WHEN trigger_policy = @sticky AND sticky_trigger IS NULL AND @t <> '' THEN @t ELSE sticky_trigger END,
          sticky_trigger_text = CASE WHEN trigger_policy = @sticky AND sticky_trigger IS NULL AND @t <> '' THEN @text ELSE sticky_trigger_text END
        WHERE {IsUser}
        """, [.. Who(user), ("@now", Now), ("@sticky", (int)TriggerPolicy.Sticky), ("@t", TriggerIds.Format(trigger)), ("@text", triggerText)]);

    public void DecideStickyTrigger(UserKey user, int[] trigger, string triggerText) => Execute($"""
        UPDATE {Users} SET sticky_trigger = @t, sticky_trigger_text = @text
        WHERE {IsUser} AND trigger_policy = @sticky AND sticky_trigger IS NULL AND @t <> ''
        """, [.. Who(user), ("@sticky", (int)TriggerPolicy.Sticky), ("@t", TriggerIds.Format(trigger)), ("@text", triggerText)]);

    /// <summary>This process's posts of the user, one at a time; a store shared by processes adds a lock they all see.</summary>
    public virtual Task<IAsyncDisposable> LockUserAsync(UserKey user, CancellationToken cancel) => _userGates.EnterAsync(user, cancel);

    public Dictionary<UserKey, sbyte[]> UserNoise(IEnumerable<UserKey> users, int size)
    {
        var found = new Dictionary<UserKey, sbyte[]>();
        var wanted = users.Distinct().ToArray();
        if (wanted.Length == 0) return found;   // "IN ()" is not SQL everywhere
        // One statement for a batch's users, two parameters each (a batch holds few).
        var rows = wanted.Select((_, i) => $"(tenant = @t{i} AND user_id = @u{i})");
        using var db = Open();
        using var command = db.Command($"SELECT tenant, user_id, pattern FROM {Noise} WHERE size = @s AND ({string.Join(" OR ", rows)})",
            [("@s", size), .. wanted.SelectMany((user, i) => new (string, object?)[] { ($"@t{i}", user.Tenant), ($"@u{i}", user.Id) })]);
        using var row = command.ExecuteReader();
        while (row.Read())
            if (row[2] is byte[] blob && blob.Length == 3 * size * size) found[new UserKey(row.GetString(0), row.GetString(1))] = MemoryMarshal.Cast<byte, sbyte>(blob).ToArray();
        return found;
    }

    public void SaveUserNoise(UserKey user, int size, sbyte[] pattern) => Execute($"""
        INSERT INTO {Noise} (tenant, user_id, size, pattern, updated_ms) SELECT @tn, @u, @s, @p, @now WHERE EXISTS (SELECT 1 FROM {Users} WHERE {IsUser}{UserRowLock})
        ON CONFLICT (tenant, user_id, size) DO UPDATE SET pattern = @p, updated_ms = @now
        """, [.. Who(user), ("@s", size), ("@p", MemoryMarshal.AsBytes(pattern.AsSpan()).ToArray()), ("@now", Now)]);

    public (bool Deleted, int Results) Delete(UserKey user)
    {
        using var db = Open();
        using var transaction = db.BeginTransaction();
        int Run(string sql)
        {
            using var command = transaction.Command(sql, Who(user));
            return command.ExecuteNonQuery();
        }
        // The user's row first: it locks the user against a result or pattern being saved for them meanwhile.
        bool deleted = Run($"DELETE FROM {Users} WHERE {IsUser}") > 0;
        Run($"DELETE FROM {Noise} WHERE {IsUser}");
        int results = Run($"DELETE FROM {Results} WHERE {IsUser}");
        transaction.Commit();
        if (deleted || results > 0) Erase(db);
        return (deleted, results);
    }

    /// <summary>After a user's rows are deleted: make the store let go of the bytes they were held in, where it can.</summary>
    protected virtual void Erase(DbConnection db) { }

    public StoredResult? FindResult(UserKey user, string postId)
    {
        using var db = Open();
        using var command = db.Command($"SELECT request_hash, response FROM {Results} WHERE {IsUser} AND post_id = @p AND created_ms >= @since",
            [.. Who(user), ("@p", postId), ("@since", Since)]);
        using var row = command.ExecuteReader();
        if (!row.Read()) return null;
        return new StoredResult((byte[])row[0], ProtectResponse.Parser.ParseFrom((byte[])row[1]));
    }

    public SavedResult? SaveResult(UserKey user, string postId, byte[] requestHash, ProtectResponse response)
    {
        var answer = response.ToByteArray();
        // Where the dialect keeps each answer's size, it is stored (and replaced) with the answer.
        var (sizeColumn, sizeValue, setSize) = SizeColumn is { } size ? ($", {size}", ", @n", $", {size} = @n") : ("", "", "");
        bool storedNow;
        using (var db = Open())
        using (var insert = db.Command($"""
            INSERT INTO {Results} (tenant, user_id, post_id, request_hash, response, created_ms{sizeColumn})
              SELECT @tn, @u, @p, @h, @r, @now{sizeValue} WHERE EXISTS (SELECT 1 FROM {Users} WHERE {IsUser}{UserRowLock})
            ON CONFLICT (tenant, user_id, post_id) DO UPDATE SET request_hash = @h, response = @r, created_ms = @now{setSize} WHERE {Results}.created_ms < @since
            RETURNING 1
            """, [.. Who(user), ("@p", postId), ("@h", requestHash), ("@r", answer), ("@n", (long)answer.Length), ("@now", Now), ("@since", Since)]))
            storedNow = insert.ExecuteScalar() is not null;
        if (_pacer.Due(answer.Length))
        {
            try { Expire(); }
            catch (DbException) { }   // busy, full or unreachable: the hourly sweep tries again
        }
        return FindResult(user, postId) is { } first ? new SavedResult(first, storedNow) : null;
    }

    public int Expire()
    {
        int expired = Execute($"DELETE FROM {Results} WHERE created_ms < @since", ("@since", Since));
        // Each tenant's own share first, so one tenant's posts never push out another's; then the store's whole budget.
        return expired + DropBeyond("PARTITION BY tenant ", _maxTenantBytes) + DropBeyond("", _maxBytes);
    }

    int DropBeyond(string partition, long budget)
    {
        string key = string.Join(", ", ResultKey), newestFirst = string.Join(", ", ResultKey.Select(column => column + " DESC"));
        return Execute($"""
            DELETE FROM {Results} WHERE ({key}) IN (
              SELECT {key} FROM (SELECT {key}, SUM({SizeColumn ?? "length(response)"}) OVER ({partition}ORDER BY created_ms DESC, {newestFirst}) AS newer_bytes FROM {Results}) AS ranked
              WHERE newer_bytes > @budget)
            """, ("@budget", budget));
    }
}
