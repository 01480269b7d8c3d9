using Google.Protobuf;
using Microsoft.Extensions.Options;
using Unlearnable.Contracts.V1;
using Unlearnable.Sidecar.Profiles;

namespace Unlearnable.Sidecar.Tests;

/// <summary>The stored answers behind idempotent replays: first answer wins, the store keeps to its byte budget, nothing is kept for a deleted user.</summary>
public class ResultStoreTests
{
    static ProfileStore Store(long maxBytes = 4L << 30, string? path = null) => new(Options.Create(new SidecarOptions
    {
        Profiles = new ProfileOptions
        {
            DatabasePath = path ?? Path.Combine(Path.GetTempPath(), "unlearnable-sidecar-tests", Guid.NewGuid().ToString("N"), "sidecar.db"),
            MaxStoredResultBytes = maxBytes,
        },
    }));

    static ProtectResponse Answer(string post, int bytes, byte fill) => new() { PostId = post, Image = ByteString.CopyFrom(Enumerable.Repeat(fill, bytes).ToArray()) };

    [Fact]
    public void TheFirstAnswerStaysAndNothingIsKeptForAUserWhoIsGone()
    {
        var store = Store();
        store.Touch("ann", TriggerPolicy.PerPost);
        var first = store.SaveResult("ann", "p", [1], Answer("p", 10, 1))!;
        var second = store.SaveResult("ann", "p", [2], Answer("p", 10, 2))!;   // a racing second run of the same post
        Assert.Equal(first.Response.Image, second.Response.Image);
        Assert.Equal([1], second.RequestHash);
        Assert.Equal(Answer("p", 10, 1).Image, store.FindResult("ann", "p")!.Response.Image);

        store.Delete("ann");
        Assert.Null(store.SaveResult("ann", "q", [3], Answer("q", 10, 3)));   // a post that finished after its user was deleted
        Assert.Null(store.FindResult("ann", "q"));
    }

    [Fact]
    public void StoredAnswersKeepToTheirByteBudgetDroppingTheOldestFirst()
    {
        var store = Store(maxBytes: 10_000);
        store.Touch("bob", TriggerPolicy.PerPost);
        for (int i = 0; i < 12; i++)
        {
            store.SaveResult("bob", $"p{i}", [(byte)i], Answer($"p{i}", 2_000, (byte)i));
            Thread.Sleep(2);   // distinct creation times
        }
        store.Expire();
        var kept = Enumerable.Range(0, 12).Where(i => store.FindResult("bob", $"p{i}") is not null).ToList();
        Assert.InRange(kept.Count, 3, 4);                     // about 10,000 bytes of 2,000-byte answers
        Assert.Equal(Enumerable.Range(12 - kept.Count, kept.Count), kept);   // the newest
    }

    [Theory]
    [InlineData(7.3, 7)]
    [InlineData(7.9999, 7)]
    [InlineData(4, 4)]
    public void ClientEpsilonsShareBatchesByTheirWholeStep(double asked, double applied)
    {
        // Published pixels move in whole 1/255 steps, so only the whole part of ε differs; batches are keyed by it,
        // which also bounds the number of distinct batch settings whatever clients send.
        var request = new ProtectRequest { UserId = "u", PostId = "p", Image = ByteString.CopyFrom([1, 2, 3]), Caption = "c", Options = new ProtectOptions { Epsilon = asked } };
        Assert.Equal(applied, Posts.RequestValidation.Validate(request, new SidecarOptions()).Key.Epsilon);
    }

    [Fact]
    public async Task AFailingCleanUpIsLoggedAndNeverStopsTheServer()
    {
        var path = Path.Combine(Path.GetTempPath(), "unlearnable-sidecar-tests", Guid.NewGuid().ToString("N"), "sidecar.db");
        var store = Store(path: path);
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        foreach (var file in Directory.GetFiles(Path.GetDirectoryName(path)!, "sidecar.db*")) File.Delete(file);
        File.WriteAllBytes(path, Enumerable.Repeat((byte)0x5A, 8192).ToArray());   // a damaged database file
        Assert.ThrowsAny<Microsoft.Data.Sqlite.SqliteException>(() => store.Expire());

        var log = new RecordingLogger();
        using var expiry = new ResultExpiry(store, log);
        await expiry.StartAsync(CancellationToken.None);
        for (int i = 0; i < 50 && log.Errors == 0; i++) await Task.Delay(20);
        Assert.Equal(1, log.Errors);
        Assert.False(expiry.ExecuteTask!.IsFaulted);   // still running: the next hour tries again
        await expiry.StopAsync(CancellationToken.None);
    }

    sealed class RecordingLogger : Microsoft.Extensions.Logging.ILogger<ResultExpiry>
    {
        public int Errors;
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
        public bool IsEnabled(Microsoft.Extensions.Logging.LogLevel level) => true;
        public void Log<TState>(Microsoft.Extensions.Logging.LogLevel level, Microsoft.Extensions.Logging.EventId id, TState state, Exception? e, Func<TState, Exception?, string> format)
        {
            if (level == Microsoft.Extensions.Logging.LogLevel.Error) Interlocked.Increment(ref Errors);
        }
    }
}
