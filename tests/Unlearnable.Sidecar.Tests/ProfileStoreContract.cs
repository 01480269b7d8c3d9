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
    protected abstract IProfileStore Store(long maxBytes = 4L << 30, TimeSpan? retention = null);
    protected abstract IProfileStore Replica(IProfileStore store);
    /// <summary>The stores' clock: creation times and retention move with it, not with the wall clock.</summary>
    protected ManualClock Clock { get; } = new();
    protected virtual void SkipIfUnavailable() { }

    protected static SidecarOptions Settings(long maxBytes, TimeSpan? retention) => new()
    {
        Profiles = new ProfileOptions { MaxStoredResultBytes = maxBytes, ResultRetention = retention ?? TimeSpan.FromHours(24) },
    };

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
}

public sealed class SqliteProfileStoreTests : ProfileStoreContract
{
    protected override IProfileStore Store(long maxBytes = 4L << 30, TimeSpan? retention = null)
    {
        var settings = Settings(maxBytes, retention);
        settings.Profiles.DatabasePath = Path.Combine(TestFolders.New(), "sidecar.db");
        return new SqliteProfileStore(Options.Create(settings), Clock);
    }

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

    protected override IProfileStore Store(long maxBytes = 4L << 30, TimeSpan? retention = null)
    {
        var settings = Settings(maxBytes, retention);
        settings.Profiles.Store = new StoreOptions { Provider = StoreProvider.PostgreSql, ConnectionString = PostgresServer.NewDatabase() };
        var store = new PostgresProfileStore(Options.Create(settings), Clock);
        _settings[store] = settings;
        return store;
    }

    protected override IProfileStore Replica(IProfileStore store) => new PostgresProfileStore(Options.Create(_settings[store]), Clock);
}
