using Microsoft.Extensions.DependencyInjection;
using System.Diagnostics;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Health.V1;
using Unlearnable.Contracts.V1;

namespace Unlearnable.Sidecar.Tests;

[Collection("sidecar")]
[Trait("Kind", "Process")]
public class ProfileAndLoadTests
{
    static ProtectRequest Post(string user, string post, TriggerPolicy policy = TriggerPolicy.Unspecified, int size = 56) => new()
    {
        UserId = user, PostId = post, Image = ByteString.CopyFrom(TestImages.Jpeg(size, size + 8)), Caption = $"photo {post} of the beach",
        Options = new ProtectOptions { TriggerPolicy = policy },
    };

    [Fact]
    public async Task StickyUsersKeepTheirTriggerProfilesSurviveARestartAndCanBeDeleted()
    {
        var folder = TestFolders.New();
        string stickyTrigger;
        await using (var server = await SidecarServer.StartAsync(folder: folder))
        {
            var first = await server.Client.ProtectAsync(Post("gina", "g1", TriggerPolicy.Sticky), server.Auth);
            var second = await server.Client.ProtectAsync(Post("gina", "g2"), server.Auth);
            stickyTrigger = first.Trigger;
            Assert.Equal(first.Trigger, second.Trigger);
            Assert.Equal(Protection.StrengthLevel.DefaultTriggerLength, first.Trigger.Split(' ').Length);
            var other = await server.Client.ProtectAsync(Post("hank", "h1"), server.Auth);
            var profile = await server.Client.GetUserProfileAsync(new GetUserProfileRequest { UserId = "gina" }, server.Auth);
            Assert.Equal(TriggerPolicy.Sticky, profile.TriggerPolicy);
            Assert.Equal(first.Trigger, profile.StickyTrigger);
            Assert.Equal(2, profile.PostsProtected);
            Assert.Equal(TriggerPolicy.PerPost, (await server.Client.GetUserProfileAsync(new GetUserProfileRequest { UserId = "hank" }, server.Auth)).TriggerPolicy);
        }

        // Restarted with another default length: a sticky user's posts that name none keep their trigger; one that names a length gets it.
        await using (var restarted = await SidecarServer.StartAsync(new Dictionary<string, string?> { ["Sidecar:Protection:DefaultTriggerLength"] = "2" }, folder: folder))
        {
            var profile = await restarted.Client.GetUserProfileAsync(new GetUserProfileRequest { UserId = "gina" }, restarted.Auth);
            Assert.Equal(2, profile.PostsProtected);
            var third = await restarted.Client.ProtectAsync(Post("gina", "g3"), restarted.Auth);
            Assert.Equal(stickyTrigger, third.Trigger);
            var named = Post("gina", "g4");
            named.Options.TriggerLength = 2;
            Assert.Equal(2, (await restarted.Client.ProtectAsync(named, restarted.Auth)).Trigger.Split(' ').Length);
            Assert.Equal(2, (await restarted.Client.ProtectAsync(Post("hank", "h2"), restarted.Auth)).Trigger.Split(' ').Length);
            var replay = await restarted.Client.ProtectAsync(Post("gina", "g1", TriggerPolicy.Sticky), restarted.Auth);
            Assert.True(replay.Replayed);

            var deleted = await restarted.Client.DeleteUserProfileAsync(new DeleteUserProfileRequest { UserId = "gina" }, restarted.Auth);
            Assert.True(deleted.Deleted);
            Assert.Equal(4, deleted.StoredResultsDeleted);
            var gone = await Assert.ThrowsAsync<RpcException>(async () =>
                await restarted.Client.GetUserProfileAsync(new GetUserProfileRequest { UserId = "gina" }, restarted.Auth));
            Assert.Equal(StatusCode.NotFound, gone.StatusCode);
            Assert.False((await restarted.Client.ProtectAsync(Post("gina", "g1", TriggerPolicy.Sticky), restarted.Auth)).Replayed);
        }
    }

    [Fact]
    public async Task WithTheQueueFullExcessPostsAreRefusedQuicklyAndEveryAcceptedOneCompletes()
    {
        await using var server = await SidecarServer.StartAsync(new Dictionary<string, string?>
        {
            ["Sidecar:Batching:QueueCapacity"] = "3",
            ["Sidecar:Batching:MaxBatchSize"] = "2",
            ["Sidecar:Protection:Medium:PgdSteps"] = "6",
        });
        var calls = Enumerable.Range(0, 24).Select(async i =>
        {
            var clock = Stopwatch.StartNew();
            try
            {
                await server.Client.ProtectAsync(Post($"load{i % 4}", $"q{i}", size: 96), server.Auth);
                return (Code: StatusCode.OK, Ms: clock.ElapsedMilliseconds);
            }
            catch (RpcException e)
            {
                Assert.Contains("queue is full (3 posts waiting)", e.Status.Detail);
                return (Code: e.StatusCode, Ms: clock.ElapsedMilliseconds);
            }
        }).ToList();
        var results = await Task.WhenAll(calls);
        var refused = results.Where(r => r.Code == StatusCode.ResourceExhausted).ToList();
        Assert.NotEmpty(refused);
        Assert.All(results, r => Assert.True(r.Code is StatusCode.OK or StatusCode.ResourceExhausted, r.Code.ToString()));
        // A refusal does not wait for the work it was refused: nearly all come back before the typical accepted post.
        var accepted = results.Where(r => r.Code == StatusCode.OK).Select(r => r.Ms).Order().ToList();
        long typical = accepted[accepted.Count / 2];
        Assert.True(refused.Count(r => r.Ms < typical) >= 0.9 * refused.Count,
            $"refusals took {string.Join(", ", refused.Select(r => r.Ms))} ms; the median accepted post {typical} ms");
        Assert.True(results.Count(r => r.Code == StatusCode.OK) >= 3);
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, await server.HealthAsync());
    }

    [Fact]
    public async Task DecodedImagesWaitingInTheQueueStayWithinThePostMemory()
    {
        await using var server = await SidecarServer.StartAsync(new Dictionary<string, string?>
        {
            ["Sidecar:Limits:PostMemoryBytes"] = "200000",   // a 150-pixel post holds ~90 KB decoded, plus its body and answer
            ["Sidecar:Batching:MaxBatchSize"] = "1",
            ["Sidecar:Protection:Medium:PgdSteps"] = "8",
        });
        var results = await Task.WhenAll(Enumerable.Range(0, 8).Select(async i =>
        {
            try { await server.Client.ProtectAsync(Post("pixels", $"px{i}", size: 150), server.Auth); return "OK"; }
            catch (RpcException e) when (e.StatusCode == StatusCode.ResourceExhausted) { return e.Status.Detail; }
        }));
        Assert.Contains("OK", results);
        Assert.Contains(results, r => r.Contains("Sidecar:Limits:PostMemoryBytes"));
        Assert.Equal(0, server.Services.GetRequiredService<Admission.PostMemory>().HeldBytes);   // every hold went back
    }

    [Fact]
    public async Task ConcurrentWritersToTheProfileStoreLoseNothing()
    {
        var path = Path.Combine(TestFolders.New(), "profiles.db");
        var options = Microsoft.Extensions.Options.Options.Create(new SidecarOptions { Profiles = new ProfileOptions { DatabasePath = path } });
        var stores = Enumerable.Range(0, 4).Select(_ => new Profiles.SqliteProfileStore(options)).ToList();   // as if four processes shared the file
        await Task.WhenAll(Enumerable.Range(0, 8).Select(t => Task.Run(() =>
        {
            var store = stores[t % stores.Count];
            for (int i = 0; i < 25; i++)
            {
                store.Touch(new("acme", $"user{i % 5}"), TriggerPolicy.Unspecified);
                store.RecordPost(new("acme", $"user{i % 5}"), [1, 2, 3], "a b c");
                store.SaveResult(new("acme", $"user{i % 5}"), $"t{t}-p{i}", [1], new ProtectResponse { PostId = $"t{t}-p{i}" });
            }
        })));
        var reader = new Profiles.SqliteProfileStore(options);
        Assert.Equal(8 * 25, Enumerable.Range(0, 5).Sum(u => reader.Get(new("acme", $"user{u}"))!.Posts));
        Assert.Equal("t7-p24", reader.FindResult(new("acme", "user4"), "t7-p24")!.Response.PostId);
    }

    [Fact]
    public async Task ACancelledQueuedPostLeavesTheQueueAndFreesItsSlot()
    {
        await using var server = await SidecarServer.StartAsync(new Dictionary<string, string?>
        {
            ["Sidecar:Batching:QueueCapacity"] = "1",
            ["Sidecar:Batching:MaxBatchSize"] = "1",
            ["Sidecar:Protection:Medium:PgdSteps"] = "100",
        });
        var busy = server.Client.ProtectAsync(Post("kim", "busy"), server.Auth).ResponseAsync;   // occupies the worker
        await Task.Delay(400);
        using var cancel = new CancellationTokenSource();
        var queued = server.Client.ProtectAsync(Post("kim", "queued"), server.Auth, cancellationToken: cancel.Token).ResponseAsync;
        await Task.Delay(300);
        var full = await Assert.ThrowsAsync<RpcException>(async () => await server.Client.ProtectAsync(Post("kim", "refused"), server.Auth));
        Assert.Equal(StatusCode.ResourceExhausted, full.StatusCode);

        cancel.Cancel();
        Assert.Equal(StatusCode.Cancelled, (await Assert.ThrowsAsync<RpcException>(() => queued)).StatusCode);
        await Task.Delay(300);
        var next = await server.Client.ProtectAsync(Post("kim", "next"), server.Auth);   // the slot was given back
        Assert.Equal("next", next.PostId);
        Assert.Equal("busy", (await busy).PostId);
    }

    [Fact]
    public async Task AnExpiredDeadlineIsReportedAndTheServerCarriesOn()
    {
        await using var server = await SidecarServer.StartAsync(new Dictionary<string, string?> { ["Sidecar:Protection:Medium:PgdSteps"] = "40" });
        var e = await Assert.ThrowsAsync<RpcException>(async () =>
            await server.Client.ProtectAsync(Post("ivan", "d1", size: 200), server.Auth, deadline: DateTime.UtcNow.AddMilliseconds(150)));
        Assert.Equal(StatusCode.DeadlineExceeded, e.StatusCode);
        var ok = await server.Client.ProtectAsync(Post("ivan", "d2"), server.Auth);
        Assert.NotEmpty(ok.Trigger);
    }

    [Fact]
    public async Task AServerWhoseModelCannotLoadReportsNotServingAndUnavailable()
    {
        await using var server = await SidecarServer.StartAsync(new Dictionary<string, string?> { ["Sidecar:Model:Checkpoint"] = "/nonexistent/surrogate.safetensors" },
            waitUntilServing: false);
        await Task.Delay(500);
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.NotServing, await server.HealthAsync());
        var e = await Assert.ThrowsAsync<RpcException>(async () => await server.Client.ProtectAsync(Post("judy", "n1"), server.Auth));
        Assert.Equal(StatusCode.Unavailable, e.StatusCode);
        Assert.Contains("surrogate model failed to load", e.Status.Detail);
    }
}
