using Google.Protobuf;
using Grpc.Core;
using Microsoft.Extensions.DependencyInjection;
using Unlearnable.Contracts.V1;
using Unlearnable.Data.Synthetic;

namespace Unlearnable.Sidecar.Tests;

/// <summary>Waits for a server's state to reach a condition, at most <c>within</c>; the assertions after it say what was expected.</summary>
static class Poll
{
    public static async Task Until(Func<bool> done, TimeSpan within)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (!done() && clock.Elapsed < within) await Task.Delay(5);
    }
}

/// <summary>Holds every codec slot of a server until disposed: admitted posts then stay in flight, waiting to be decoded.</summary>
static class CodecSlots
{
    public static async Task<IDisposable> HoldAllAsync(SidecarServer server)
    {
        var codecs = server.Services.GetRequiredService<Posts.CodecGate>();
        var slots = new List<IDisposable>();
        for (int i = 0; i < Posts.CodecGate.Capacity; i++) slots.Add(await codecs.HoldAsync(CancellationToken.None));
        return new Held(slots);
    }

    sealed class Held(List<IDisposable> slots) : IDisposable
    {
        public void Dispose() => slots.ForEach(s => s.Dispose());
    }
}

/// <summary>How batches form: a busy server waits for posts already on their way; a lone post does not wait for anyone.</summary>
[Trait("Kind", "Process")]
public class BatchingTests
{
    static ProtectRequest Post(string user, string post, byte[] image) => new()
    {
        UserId = user, PostId = post, Image = ByteString.CopyFrom(image), Caption = $"post {post} on the hill",
    };

    [Fact]
    public async Task APostWaitsForOneStillBeingDecodedButALonePostStartsAtOnce()
    {
        await using var server = await SidecarServer.StartAsync(new Dictionary<string, string?>
        {
            ["Sidecar:Batching:MaxWait"] = "00:00:00.001",
            ["Sidecar:Batching:MaxGather"] = "00:00:20",
        });
        // A lone post: nothing else in the server, so it starts after MaxWait, not MaxGather.
        var lone = await server.Client.ProtectAsync(Post("ada", "lone", TestImages.Jpeg(96, 72)), server.Auth);
        Assert.Equal(1, lone.Quality.BatchSize);
        Assert.True(lone.Quality.QueuedMs < 5_000, $"a lone post waited {lone.Quality.QueuedMs} ms");

        // A 24 MP photo is still being decoded when a small post is queued: the small one waits for it
        // (with a 1 ms MaxWait alone, they would run as two batches of one). Every codec slot is held
        // until both posts are in the server, so neither can be queued before the other is counted.
        var inFlight = server.Services.GetRequiredService<Posts.InFlightPosts>();
        using var slots = await CodecSlots.HoldAllAsync(server);
        var big = server.Client.ProtectAsync(Post("bea", "big", PhonePhoto.Jpeg(6000, 4000, quality: 92, seed: 3)), server.Auth).ResponseAsync;
        await Poll.Until(() => inFlight.Count >= 1, TimeSpan.FromSeconds(10));
        var smallCall = server.Client.ProtectAsync(Post("cal", "small", TestImages.Jpeg(96, 72)), server.Auth).ResponseAsync;
        await Poll.Until(() => inFlight.Count >= 2, TimeSpan.FromSeconds(10));
        Assert.Equal(2, inFlight.Count);
        slots.Dispose();
        var small = await smallCall;
        var bigAnswer = await big;
        Assert.True(small.Quality.BatchSize == 2, $"small: batch {small.Quality.BatchSize}, queued {small.Quality.QueuedMs} ms; big: batch {bigAnswer.Quality.BatchSize}, queued {bigAnswer.Quality.QueuedMs} ms");
        Assert.Equal(2, bigAnswer.Quality.BatchSize);
    }
}

/// <summary>The queue policy through the real server: while a long batch runs, interactive posts overtake bulk ones, and a post past its queue timeout is rejected at once or delayed, as it asked.</summary>
[Trait("Kind", "Process")]
public class QueuePolicyTests
{
    static ProtectRequest Post(string user, ProtectOptions options) => new()
    {
        UserId = user, PostId = "p-" + user, Image = ByteString.CopyFrom(TestImages.Jpeg(96, 72)), Caption = $"{user} on the hill", Options = options,
    };

    [Fact]
    public async Task InteractiveOvertakesBulkAndATimedOutPostIsRejectedOrDelayed()
    {
        await using var server = await SidecarServer.StartAsync(new Dictionary<string, string?>
        {
            ["Sidecar:Batching:MaxBatchSize"] = "1",
            ["Sidecar:Batching:MaxWait"] = "00:00:00.001",
            ["Sidecar:Batching:MaxGather"] = "00:00:00.001",
            ["Sidecar:Protection:High:PgdSteps"] = "150",   // a batch long enough for the posts below to queue behind it
        });
        var metrics = server.Services.GetRequiredService<Observability.SidecarMetrics>();
        var batcher = server.Services.GetRequiredService<Batching.MicroBatcher>();
        double batches = metrics.BatchExecutions.Value;
        var running = server.Client.ProtectAsync(Post("long", new ProtectOptions { Strength = ProtectionStrength.High }), server.Auth).ResponseAsync;
        await Poll.Until(() => metrics.BatchExecutions.Value > batches, TimeSpan.FromSeconds(5));

        var rejected = await Assert.ThrowsAsync<RpcException>(() => server.Client.ProtectAsync(
            Post("hasty", new ProtectOptions { QueueTimeoutMs = 1, TimeoutAction = TimeoutAction.Reject }), server.Auth).ResponseAsync);
        Assert.Equal(StatusCode.DeadlineExceeded, rejected.StatusCode);
        Assert.Contains("queue timeout of 1 ms", rejected.Status.Detail);
        Assert.False(running.IsCompleted, "the rejection came only after the batch it waited behind");

        var delayed = server.Client.ProtectAsync(Post("delayed", new ProtectOptions { QueueTimeoutMs = 1, TimeoutAction = TimeoutAction.Delay }), server.Auth).ResponseAsync;
        await Poll.Until(() => batcher.Waiting >= 1, TimeSpan.FromSeconds(5));
        var bulk = server.Client.ProtectAsync(Post("backfill", new ProtectOptions { Priority = Priority.Bulk }), server.Auth).ResponseAsync;
        await Poll.Until(() => batcher.Waiting >= 2, TimeSpan.FromSeconds(5));
        var live = server.Client.ProtectAsync(Post("upload", new ProtectOptions { Priority = Priority.Interactive }), server.Auth).ResponseAsync;
        await Poll.Until(() => batcher.Waiting >= 3, TimeSpan.FromSeconds(5));
        Assert.False(running.IsCompleted, "the posts did not all queue behind the long batch; lengthen it");

        await running;
        var answers = new[] { await delayed, await bulk, await live };
        Assert.All(answers, a => Assert.Equal(1, a.Quality.BatchSize));
        // One batch at a time, so the later a post started, the longer it waited: upload, then backfill, then the delayed post.
        Assert.True(answers[2].Quality.QueuedMs < answers[1].Quality.QueuedMs && answers[1].Quality.QueuedMs < answers[0].Quality.QueuedMs,
            $"queued ms: upload {answers[2].Quality.QueuedMs}, backfill {answers[1].Quality.QueuedMs}, delayed {answers[0].Quality.QueuedMs}");
        Assert.Equal(1, (await server.Client.GetUserProfileAsync(new GetUserProfileRequest { UserId = "delayed" }, server.Auth)).PostsProtected);
    }
}
