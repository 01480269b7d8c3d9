using System.Data.Common;
using Google.Protobuf;
using Microsoft.Extensions.Options;
using Unlearnable.Contracts.V1;
using Unlearnable.Hosting;
using Unlearnable.Sidecar.Profiles;
using Unlearnable.Tests;

namespace Unlearnable.Sidecar.Tests;

/// <summary>
/// What every profile store promises, run against SQLite and against a real PostgreSQL server.
/// <see cref="Replica"/> is a second store on the same state: another process's instance for
/// PostgreSQL (so the rules are checked across replicas), the same instance for SQLite (whose
/// user lock is the process's own).
/// </summary>
public abstract class ProfileStoreContract
{
    protected abstract IProfileStore Store(long maxBytes = 4L << 30, TimeSpan? retention = null, long? tenantBytes = null);
    /// <summary>An empty database: where it is, and a raw connection to it (to write what an older version left).</summary>
    protected abstract (string Database, Func<DbConnection> Raw) EmptyDatabase();
    /// <summary>A store opened on <paramref name="database"/> with these tenants.</summary>
    protected abstract IProfileStore StoreOn(string database, ApiKeyPolicy keys);
    /// <summary>The dialect's table prefix, 64-bit integer, byte string and size column (if it keeps one), as the store before tenants made them.</summary>
    protected abstract (string Prefix, string Int64, string Bytes, string? SizeColumn) Dialect { get; }
    protected abstract IProfileStore Replica(IProfileStore store);
    /// <summary>The stores' clock: creation times and retention move with it, not with the wall clock.</summary>
    protected ManualClock Clock { get; } = new();
    protected virtual void SkipIfUnavailable() { }

    protected static SidecarOptions Settings(long maxBytes, TimeSpan? retention, long? tenantBytes = null) => new()
    {
        Profiles = new ProfileOptions { MaxStoredResultBytes = maxBytes, ResultRetention = retention ?? TimeSpan.FromHours(24), MaxStoredResultBytesPerTenant = tenantBytes },
    };

    static ApiKeyPolicy TwoTenants(string? legacy) => ApiKeyPolicy.From(new AuthOptions
    {
        Tenants = { ["acme"] = ["acme-key"], ["globex"] = ["globex-key"] }, LegacyTenant = legacy,
    }, development: false, "Sidecar");

    /// <summary>A user of the tenant these tests run as.</summary>
    protected static UserKey U(string id) => new("acme", id);

    static ProtectResponse Answer(string post, int bytes, byte fill) => new() { PostId = post, Image = ByteString.CopyFrom(Enumerable.Repeat(fill, bytes).ToArray()) };

    [SkippableFact]
    public void TheFirstAnswerStaysOnEveryReplicaAndNothingIsKeptForAUserWhoIsGone()
    {
        SkipIfUnavailable();
        var store = Store();
        var other = Replica(store);
        store.Touch(U("ann"), TriggerPolicy.PerPost);
        var first = store.SaveResult(U("ann"), "p", [1], Answer("p", 10, 1))!;
        var second = other.SaveResult(U("ann"), "p", [2], Answer("p", 10, 2))!;   // a racing run of the same post on another replica
        Assert.True(first.StoredNow);
        Assert.False(second.StoredNow);
        Assert.Equal(first.First.Response.Image, second.First.Response.Image);
        Assert.Equal([1], second.First.RequestHash);
        Assert.Equal(Answer("p", 10, 1).Image, other.FindResult(U("ann"), "p")!.Response.Image);

        Assert.Equal((true, 1), other.Delete(U("ann")));
        Assert.Null(store.FindResult(U("ann"), "p"));
        Assert.Null(store.SaveResult(U("ann"), "q", [3], Answer("q", 10, 3)));   // a post that finished after its user was deleted
        Assert.Null(store.FindResult(U("ann"), "q"));
        Assert.Null(store.Get(U("ann")));
        Assert.Equal((false, 0), store.Delete(U("ann")));
    }

    [SkippableFact]
    public void StoredAnswersKeepToTheirByteBudgetDroppingTheOldestFirst()
    {
        SkipIfUnavailable();
        var store = Store(maxBytes: 10_000);
        store.Touch(U("bob"), TriggerPolicy.PerPost);
        for (int i = 0; i < 12; i++)
        {
            store.SaveResult(U("bob"), $"p{i}", [(byte)i], Answer($"p{i}", 2_000, (byte)i));
            Clock.Advance(TimeSpan.FromMilliseconds(2));   // distinct creation times
        }
        store.Expire();
        var kept = Enumerable.Range(0, 12).Where(i => store.FindResult(U("bob"), $"p{i}") is not null).ToList();
        Assert.InRange(kept.Count, 3, 4);                     // about 10,000 bytes of 2,000-byte answers
        Assert.Equal(Enumerable.Range(12 - kept.Count, kept.Count), kept);   // the newest
    }

    [SkippableFact]
    public void AnswersPastTheirRetentionAreNeitherReplayedNorKept()
    {
        SkipIfUnavailable();
        var store = Store(retention: TimeSpan.FromMilliseconds(300));
        store.Touch(U("cy"), TriggerPolicy.PerPost);
        store.SaveResult(U("cy"), "old", [1], Answer("old", 10, 1));
        Assert.NotNull(store.FindResult(U("cy"), "old"));
        Clock.Advance(TimeSpan.FromMilliseconds(400));
        Assert.Null(store.FindResult(U("cy"), "old"));
        var again = store.SaveResult(U("cy"), "old", [2], Answer("old", 10, 2))!;   // an expired id is protected afresh
        Assert.True(again.StoredNow);
        Assert.Equal([2], again.First.RequestHash);
        Clock.Advance(TimeSpan.FromMilliseconds(400));
        Assert.Equal(1, store.Expire());
    }

    [SkippableFact]
    public void ProfilesKeepTheirPolicyAndASetStickyTriggerNeverChanges()
    {
        SkipIfUnavailable();
        var store = Store();
        var other = Replica(store);
        var made = store.Touch(U("dee"), TriggerPolicy.Unspecified, fallback: TriggerPolicy.Sticky);
        Assert.Equal(TriggerPolicy.Sticky, made.Policy);
        Assert.Equal(TriggerPolicy.Sticky, other.Touch(U("dee"), TriggerPolicy.Unspecified).Policy);   // unspecified keeps what is stored

        store.RecordPost(U("dee"), [11, 12], "fern glade");
        other.RecordPost(U("dee"), [13, 14], "moss creek");   // a later post on another replica
        var profile = other.Get(U("dee"))!;
        Assert.Equal([11, 12], profile.StickyTrigger!);
        Assert.Equal("fern glade", profile.StickyTriggerText);
        Assert.Equal(2, profile.Posts);

        Assert.Equal(TriggerPolicy.PerPost, other.Touch(U("dee"), TriggerPolicy.PerPost).Policy);   // an explicit policy replaces it
        store.Touch(U("eve"), TriggerPolicy.PerPost);
        store.RecordPost(U("eve"), [21], "oak");
        Assert.Null(store.Get(U("eve"))!.StickyTrigger);
    }

    [SkippableFact]
    public void NoisePatternsRoundTripAndGoWithTheirUser()
    {
        SkipIfUnavailable();
        var store = Store();
        var other = Replica(store);
        const int size = 4;
        var pattern = Enumerable.Range(0, 3 * size * size).Select(i => (sbyte)(i % 17 - 8)).ToArray();
        store.SaveUserNoise(U("fay"), size, pattern);   // no profile yet: not kept
        Assert.Empty(store.UserNoise([U("fay")], size));
        store.Touch(U("fay"), TriggerPolicy.PerPost);
        store.Touch(U("gus"), TriggerPolicy.PerPost);
        store.SaveUserNoise(U("fay"), size, pattern);
        other.SaveUserNoise(U("gus"), size, [.. pattern.Select(v => (sbyte)-v)]);
        var found = other.UserNoise([U("fay"), U("gus"), U("fay"), U("nobody")], size);
        Assert.Equal(["fay", "gus"], found.Keys.Select(k => k.Id).Order());
        Assert.Equal(pattern, found[U("fay")]);
        Assert.Equal(-pattern[5], found[U("gus")][5]);
        Assert.Empty(other.UserNoise([U("fay")], size * 2));   // another model size

        other.Delete(U("fay"));
        Assert.Equal([U("gus")], store.UserNoise([U("fay"), U("gus")], size).Keys);
    }

    [SkippableFact]
    public async Task OnePostAtATimeHoldsAUserAcrossReplicas()
    {
        SkipIfUnavailable();
        var store = Store();
        var other = Replica(store);
        var held = await store.LockUserAsync(U("hal"), CancellationToken.None);
        var waiting = other.LockUserAsync(U("hal"), CancellationToken.None);
        var someoneElse = await other.LockUserAsync(U("ivy"), CancellationToken.None);   // other users are not held up
        await Task.Delay(300, CancellationToken.None);
        Assert.False(waiting.IsCompleted);
        using (var cancel = new CancellationTokenSource(200))   // a cancelled wait gives up
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => other.LockUserAsync(U("hal"), cancel.Token));
        await held.DisposeAsync();
        await held.DisposeAsync();   // releasing twice is harmless
        var next = await waiting.WaitAsync(TimeSpan.FromSeconds(10), CancellationToken.None);
        await next.DisposeAsync();
        await someoneElse.DisposeAsync();
        await (await store.LockUserAsync(U("hal"), CancellationToken.None)).DisposeAsync();
    }

    [SkippableFact]
    public void TenantsAreApartAndEachKeepsItsOwnShareOfTheBytes()
    {
        SkipIfUnavailable();
        var store = Store(maxBytes: 1 << 20, tenantBytes: 5_000);
        var other = Replica(store);
        UserKey acme = new("acme", "ann"), globex = new("globex", "ann");
        store.Touch(acme, TriggerPolicy.Sticky);
        other.Touch(globex, TriggerPolicy.PerPost);
        other.SaveResult(globex, "p0", [9], Answer("p0", 2_000, 9));   // older than all of acme's
        Assert.Null(store.FindResult(acme, "p0"));
        for (int i = 0; i < 12; i++)
        {
            Clock.Advance(TimeSpan.FromSeconds(1));
            store.SaveResult(acme, $"p{i}", [(byte)i], Answer($"p{i}", 2_000, (byte)i));
        }
        store.RecordPost(acme, [5, 6], "oak fern");
        store.Expire();
        // acme's 24 KB went past its 5 KB share: its oldest went, and globex's older answer stayed.
        Assert.Equal([10, 11], Enumerable.Range(0, 12).Where(i => other.FindResult(acme, $"p{i}") is not null));
        Assert.Equal(9, other.FindResult(globex, "p0")!.Response.Image[0]);
        Assert.Equal((1L, TriggerPolicy.PerPost, (string?)null), (other.Get(globex)!.Posts + 1, other.Get(globex)!.Policy, other.Get(globex)!.StickyTriggerText));
        Assert.Equal("oak fern", other.Get(acme)!.StickyTriggerText);
        Assert.Equal((true, 1), other.Delete(globex));
        Assert.NotNull(store.Get(acme));
    }

    [SkippableFact]
    public void RowsFromBeforeTenantsGoToTheLegacyTenant()
    {
        SkipIfUnavailable();
        var (database, raw) = EmptyDatabase();
        var (prefix, int64, bytes, size) = Dialect;
        var answer = Answer("p", 300, 7).ToByteArray();
        using (var db = raw())
        {
            db.Open();
            void Run(string sql, params (string, object?)[] parameters)
            {
                using var command = db.Command(sql.Replace("{P}", prefix), parameters);
                command.ExecuteNonQuery();
            }
            // The tables as the store made them before it had tenants.
            Run($"""
                CREATE TABLE {prefix}users (user_id TEXT PRIMARY KEY, trigger_policy INTEGER NOT NULL, sticky_trigger TEXT, sticky_trigger_text TEXT,
                  posts {int64} NOT NULL DEFAULT 0, created_ms {int64} NOT NULL, last_seen_ms {int64} NOT NULL);
                CREATE TABLE {prefix}results (user_id TEXT NOT NULL, post_id TEXT NOT NULL, request_hash {bytes} NOT NULL, response {bytes} NOT NULL,
                  {(size is null ? "" : size + $" {int64} NOT NULL, ")}created_ms {int64} NOT NULL, PRIMARY KEY (user_id, post_id));
                CREATE INDEX {prefix}results_created ON {prefix}results (created_ms);
                CREATE TABLE {prefix}user_noise (user_id TEXT NOT NULL, size INTEGER NOT NULL, pattern {bytes} NOT NULL, updated_ms {int64} NOT NULL, PRIMARY KEY (user_id, size));
                """);
            Run("INSERT INTO {P}users VALUES ('ann', 2, '5,6', 'oak fern', 3, 1, 2)");
            Run($"INSERT INTO {prefix}results (user_id, post_id, request_hash, response, {(size is null ? "" : size + ", ")}created_ms) VALUES ('ann', 'p', @h, @r, {(size is null ? "" : "@n, ")}@now)",
                ("@h", new byte[] { 1, 2 }), ("@r", answer), ("@n", (long)answer.Length), ("@now", Clock.GetUtcNow().ToUnixTimeMilliseconds()));
            Run("INSERT INTO {P}user_noise VALUES ('ann', 2, @p, 1)", ("@p", new byte[12]));
        }

        // Two tenants and nobody named as the owner: refused, naming the setting, and nothing is changed.
        var refused = Assert.Throws<InvalidOperationException>(() => StoreOn(database, TwoTenants(legacy: null)));
        Assert.Contains("Sidecar:Auth:LegacyTenant", refused.Message);

        var store = StoreOn(database, TwoTenants(legacy: "acme"));
        UserKey acme = new("acme", "ann"), globex = new("globex", "ann");
        Assert.Equal(("oak fern", 3L, TriggerPolicy.Sticky), (store.Get(acme)!.StickyTriggerText, store.Get(acme)!.Posts, store.Get(acme)!.Policy));
        Assert.Equal(answer, store.FindResult(acme, "p")!.Response.ToByteArray());
        Assert.Single(store.UserNoise([acme], 2));
        Assert.Null(store.Get(globex));
        Assert.Null(store.FindResult(globex, "p"));

        // Opened again (another replica, a restart), nothing moves twice; new rows get on as usual.
        var again = StoreOn(database, TwoTenants(legacy: null));
        again.Touch(globex, TriggerPolicy.PerPost);
        Assert.NotNull(again.SaveResult(globex, "p", [3], Answer("p", 10, 3)));
        Assert.Equal(answer, again.FindResult(acme, "p")!.Response.ToByteArray());
        Assert.Equal(3, again.FindResult(globex, "p")!.Response.Image[0]);
    }
}

public sealed class SqliteProfileStoreTests : ProfileStoreContract
{
    protected override IProfileStore Store(long maxBytes = 4L << 30, TimeSpan? retention = null, long? tenantBytes = null)
    {
        var settings = Settings(maxBytes, retention, tenantBytes);
        settings.Profiles.DatabasePath = Path.Combine(TestFolders.New(), "sidecar.db");
        return new SqliteProfileStore(Options.Create(settings), Clock);
    }

    protected override (string Database, Func<DbConnection> Raw) EmptyDatabase()
    {
        var folder = TestFolders.New();
        Directory.CreateDirectory(folder);
        var path = Path.Combine(folder, "sidecar.db");
        return (path, () => new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={path};Pooling=False"));
    }

    protected override IProfileStore StoreOn(string database, ApiKeyPolicy keys) =>
        new SqliteProfileStore(Options.Create(new SidecarOptions { Profiles = { DatabasePath = database } }), Clock, keys);

    protected override (string Prefix, string Int64, string Bytes, string? SizeColumn) Dialect => ("", "INTEGER", "BLOB", null);

    protected override IProfileStore Replica(IProfileStore store) => store;

    [Fact]
    public void ADeletedUsersAnswersAreGoneFromTheFilesNotOnlyFromTheTables()
    {
        var settings = Settings(4L << 30, null);
        settings.Profiles.DatabasePath = Path.Combine(TestFolders.New(), "sidecar.db");
        var store = new SqliteProfileStore(Options.Create(settings));
        var marker = "zoe-private-caption-7c41"u8.ToArray();
        store.Touch(U("zoe"), TriggerPolicy.PerPost);
        store.Touch(U("max"), TriggerPolicy.PerPost);
        for (int i = 0; i < 20; i++)
            store.SaveResult(U("zoe"), $"p{i}", [1], new ProtectResponse { PostId = $"p{i}", ProtectedCaption = "zoe-private-caption-7c41", Image = ByteString.CopyFrom(new byte[3000]) });
        store.SaveResult(U("max"), "m", [1], new ProtectResponse { PostId = "m", ProtectedCaption = "max's caption", Image = ByteString.CopyFrom(new byte[3000]) });

        Assert.Equal((true, 20), store.Delete(U("zoe")));

        var files = Directory.GetFiles(Path.GetDirectoryName(settings.Profiles.DatabasePath)!, "sidecar.db*");
        foreach (var file in files)
            Assert.True(File.ReadAllBytes(file).AsSpan().IndexOf(marker) < 0, $"{Path.GetFileName(file)} still holds the deleted user's caption");
        Assert.Equal("max's caption", store.FindResult(U("max"), "m")!.Response.ProtectedCaption);   // the others' are intact
    }
}

[Trait("Kind", "Process")]
public sealed class PostgresProfileStoreTests : ProfileStoreContract
{
    readonly Dictionary<IProfileStore, SidecarOptions> _settings = [];

    protected override void SkipIfUnavailable() => Skip.If(PostgresServer.Unavailable is not null, PostgresServer.Unavailable);

    protected override IProfileStore Store(long maxBytes = 4L << 30, TimeSpan? retention = null, long? tenantBytes = null)
    {
        var settings = Settings(maxBytes, retention, tenantBytes);
        settings.Profiles.Store = new StoreOptions { Provider = StoreProvider.PostgreSql, ConnectionString = PostgresServer.NewDatabase() };
        var store = new PostgresProfileStore(Options.Create(settings), Clock);
        _settings[store] = settings;
        return store;
    }

    protected override (string Database, Func<DbConnection> Raw) EmptyDatabase()
    {
        var database = PostgresServer.NewDatabase();
        return (database, () => new Npgsql.NpgsqlConnection(database));
    }

    protected override IProfileStore StoreOn(string database, ApiKeyPolicy keys) => new PostgresProfileStore(Options.Create(new SidecarOptions
    {
        Profiles = { Store = new StoreOptions { Provider = StoreProvider.PostgreSql, ConnectionString = database } },
    }), Clock, keys);

    protected override (string Prefix, string Int64, string Bytes, string? SizeColumn) Dialect => ("sidecar_", "BIGINT", "BYTEA", "bytes");

    protected override IProfileStore Replica(IProfileStore store) => new PostgresProfileStore(Options.Create(_settings[store]), Clock);
}
