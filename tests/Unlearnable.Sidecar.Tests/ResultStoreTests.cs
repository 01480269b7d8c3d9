using Google.Protobuf;
using Microsoft.Extensions.Options;
using Unlearnable.Contracts.V1;
using Unlearnable.Sidecar.Profiles;

namespace Unlearnable.Sidecar.Tests;

/// <summary>Around the stored answers: batch keys for ε, and a clean-up that fails without stopping the server (the stores' own rules are in <see cref="ProfileStoreContract"/>).</summary>
public class ResultStoreTests
{
    static SqliteProfileStore Store(long maxBytes = 4L << 30, string? path = null) => new(Options.Create(new SidecarOptions
    {
        Profiles = new ProfileOptions
        {
            DatabasePath = path ?? Path.Combine(TestFolders.New(), "sidecar.db"),
            MaxStoredResultBytes = maxBytes,
        },
    }));

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
        var path = Path.Combine(TestFolders.New(), "sidecar.db");
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
