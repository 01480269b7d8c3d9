using Google.Protobuf;
using Grpc.Core;
using Microsoft.Extensions.DependencyInjection;
using Unlearnable.Contracts.V1;
using Unlearnable.Sidecar.Admission;

namespace Unlearnable.Sidecar.Tests;

/// <summary>
/// The upload path under a client that sends too much, retries, races itself and deletes itself:
/// every post gets a result or a clear per-post status, replays equal what was published, and
/// no one client takes the server.
/// </summary>
[Collection("sidecar")]
[Trait("Kind", "Process")]
public class LoadHardeningTests
{
    // Slow batches of one post, so posts pile up as under real load.
    static readonly Dictionary<string, string?> Slow = new()
    {
        ["Sidecar:Batching:MaxBatchSize"] = "1",
        ["Sidecar:Protection:Medium:PgdSteps"] = "40",
    };

    static Dictionary<string, string?> With(params (string Key, string Value)[] settings)
    {
        var all = new Dictionary<string, string?>(Slow);
        foreach (var (k, v) in settings) all[k] = v;
        return all;
    }

    static ProtectRequest Post(string user, string post, TriggerPolicy policy = TriggerPolicy.Unspecified, int size = 64) => new()
    {
        UserId = user, PostId = post, Image = ByteString.CopyFrom(TestImages.Jpeg(size, size)), Caption = $"post {post} at the lake",
        Options = new ProtectOptions { TriggerPolicy = policy },
    };

    [Fact]
    public async Task AStreamAnswersEveryPostEvenWhenTheServerIsFullAndReadsOnlyWhatItCanHold()
    {
        await using var server = await SidecarServer.StartAsync(With(("Sidecar:Batching:QueueCapacity", "1"), ("Sidecar:Limits:MaxPostsInFlightPerStream", "3")));
        var admission = server.Services.GetRequiredService<AdmissionControl>();
        using var call = server.Client.ProtectStream(server.Auth);
        const int posts = 8;
        var sending = Task.Run(async () =>
        {
            for (int i = 0; i < posts; i++) await call.RequestStream.WriteAsync(Post("rosa", $"s{i}"));
        });
        // Read every answer before half-closing: a failed post must be answered while the stream is open.
        var answers = new List<ProtectResponse>();
        int mostHeld = 0;
        while (answers.Count < posts && await call.ResponseStream.MoveNext())
        {
            answers.Add(call.ResponseStream.Current);
            mostHeld = Math.Max(mostHeld, admission.InFlight);
        }
        await sending;
        await call.RequestStream.CompleteAsync();
        Assert.False(await call.ResponseStream.MoveNext());   // the stream ends cleanly: OK, not an error status
        Assert.Equal(Enumerable.Range(0, posts).Select(i => $"s{i}").Order(), answers.Select(a => a.PostId).Order());
        var refused = answers.Where(a => a.Error is not null).ToList();
        Assert.NotEmpty(refused);   // a queue of one cannot hold a stream of three at a time
        Assert.All(refused, a => Assert.Equal((int)StatusCode.ResourceExhausted, a.Error.Code));
        Assert.Contains(answers, a => a.Error is null && a.Image.Length > 0);
        Assert.InRange(mostHeld, 1, 3);
    }

    [Fact]
    public async Task IdleStreamsHoldAtMostTheirShareOfSlotsAndUnaryPostsStillGetOne()
    {
        await using var server = await SidecarServer.StartAsync(new Dictionary<string, string?> { ["Sidecar:Limits:MaxPostsInFlight"] = "4" });
        var admission = server.Services.GetRequiredService<AdmissionControl>();
        // Four sessions whose users post nothing: each stream waits for a slot before reading its next post.
        var idle = Enumerable.Range(0, 4).Select(_ => server.Client.ProtectStream(server.Auth)).ToList();
        await Poll.Until(() => admission.InFlight >= 2, TimeSpan.FromSeconds(10));
        await Task.Delay(300);
        Assert.Equal(2, admission.InFlight);   // StreamShare 0.5 of 4
        var unary = await server.Client.ProtectAsync(Post("uma", "u1"), server.Auth);
        Assert.False(string.IsNullOrEmpty(unary.ProtectedCaption));
        foreach (var call in idle) call.Dispose();
        await Poll.Until(() => admission.InFlight == 0, TimeSpan.FromSeconds(10));   // cancelled sessions give their slots back
    }

    [Fact]
    public async Task AnAnswerTheClientDoesNotReadKeepsItsSlotUntilItIsWritten()
    {
        await using var server = await SidecarServer.StartAsync();
        var admission = server.Services.GetRequiredService<AdmissionControl>();
        var metrics = server.Services.GetRequiredService<Observability.SidecarMetrics>();
        double answered = metrics.Posts.WithLabels("OK").Value;
        using var call = server.Client.ProtectStream(server.Auth);
        // Two grainy photos answered as PNG (about 1.5 MB each): far more than the client's receive window while it reads nothing.
        for (int i = 0; i < 2; i++)
            await call.RequestStream.WriteAsync(new ProtectRequest
            {
                UserId = "vera", PostId = $"big{i}", Image = ByteString.CopyFrom(Grainy(720, 540, seed: i)), Caption = "a grainy photo",
                Options = new ProtectOptions { OutputFormat = ImageFormat.Png },
            });
        await Poll.Until(() => metrics.Posts.WithLabels("OK").Value >= answered + 2, TimeSpan.FromSeconds(120));
        await Task.Delay(300);
        // Both protected, neither written: their slots are still held (and the stream holds one more, waiting for its next post).
        Assert.Equal(3, admission.InFlight);
        await call.RequestStream.CompleteAsync();
        var answers = new List<ProtectResponse>();
        while (await call.ResponseStream.MoveNext()) answers.Add(call.ResponseStream.Current);
        Assert.Equal(["big0", "big1"], answers.Select(a => a.PostId).Order());
        Assert.All(answers, a => Assert.True(a.Image.Length > 500_000));
        await Poll.Until(() => admission.InFlight == 0, TimeSpan.FromSeconds(10));
    }

    static byte[] Grainy(int width, int height, int seed)
    {
        using var bitmap = new SkiaSharp.SKBitmap(new SkiaSharp.SKImageInfo(width, height, SkiaSharp.SKColorType.Rgba8888, SkiaSharp.SKAlphaType.Opaque));
        var rng = new Random(seed);
        var pixels = bitmap.GetPixelSpan();
        for (int i = 0; i < pixels.Length; i++) pixels[i] = i % 4 == 3 ? (byte)255 : (byte)rng.Next(256);
        return Imaging.ImageEncoding.Png(bitmap);
    }

    [Fact]
    public async Task UnaryPostsBeyondTheServersAndTheUsersShareAreRefusedNamingTheLimit()
    {
        await using var server = await SidecarServer.StartAsync(With(("Sidecar:Limits:MaxPostsInFlight", "3"), ("Sidecar:Limits:MaxPostsInFlightPerUser", "1")));
        var admission = server.Services.GetRequiredService<AdmissionControl>();
        // Every codec slot is held, so an admitted post stays in flight (waiting to be decoded) until they are
        // released: how fast a post is protected cannot decide what the test sees.
        using var release = await CodecSlots.HoldAllAsync(server);   // released also if an assertion fails: the server cannot stop while they are held

        // One user, two posts at once: the second is over the user's share.
        var first = server.Client.ProtectAsync(Post("sam", "u1"), server.Auth).ResponseAsync;
        await Poll.Until(() => admission.InFlight >= 1, TimeSpan.FromSeconds(10));
        var user = await Assert.ThrowsAsync<RpcException>(async () => await server.Client.ProtectAsync(Post("sam", "u2"), server.Auth));
        Assert.Equal(StatusCode.ResourceExhausted, user.StatusCode);
        Assert.Contains("MaxPostsInFlightPerUser", user.Status.Detail);

        // Many users at once: beyond three in flight (sam's post among them) the server refuses before reading the body.
        var calls = Enumerable.Range(0, 8).Select(i => server.Client.ProtectAsync(Post($"crowd{i}", "c"), server.Auth).ResponseAsync).ToList();
        await Poll.Until(() => calls.Count(c => c.IsCompleted) >= 6, TimeSpan.FromSeconds(10));
        Assert.Equal(3, admission.InFlight);
        release.Dispose();
        await first;
        var outcomes = await Task.WhenAll(calls.Select(async c => { try { await c; return StatusCode.OK; } catch (RpcException e) { return e.StatusCode; } }));
        Assert.Contains(StatusCode.OK, outcomes);
        Assert.Contains(StatusCode.ResourceExhausted, outcomes);
        Assert.All(outcomes, s => Assert.True(s is StatusCode.OK or StatusCode.ResourceExhausted, s.ToString()));
        var metrics = await new HttpClient().GetStringAsync($"http://127.0.0.1:{server.HttpPort}/metrics");
        Assert.Contains("unlearnable_posts_refused_total{reason=\"in_flight\"}", metrics);
        Assert.Contains("unlearnable_posts_refused_total{reason=\"user_share\"}", metrics);
    }

    [Fact]
    public async Task ARetriedPostIsProtectedOnceAndEveryReplayIsTheFirstAnswer()
    {
        await using var server = await SidecarServer.StartAsync(Slow);
        var request = Post("tina", "same");
        // Six retries race; the first caller gives up half way, which must not cancel the others.
        using var impatient = new CancellationTokenSource();
        var first = server.Client.ProtectAsync(request, server.Auth, cancellationToken: impatient.Token).ResponseAsync;
        await Task.Delay(100);
        var retries = Enumerable.Range(0, 5).Select(_ => server.Client.ProtectAsync(request, server.Auth).ResponseAsync).ToList();
        await Task.Delay(300);   // the retries have joined the running post
        impatient.Cancel();
        Assert.Equal(StatusCode.Cancelled, (await Assert.ThrowsAsync<RpcException>(() => first)).StatusCode);
        var answers = await Task.WhenAll(retries);
        var later = await server.Client.ProtectAsync(request, server.Auth);
        Assert.All(answers.Append(later), a => Assert.Equal(answers[0].Image, a.Image));
        Assert.All(answers.Append(later), a => Assert.Equal(answers[0].ProtectedCaption, a.ProtectedCaption));
        Assert.True(later.Replayed);
        var profile = await server.Client.GetUserProfileAsync(new GetUserProfileRequest { UserId = "tina" }, server.Auth);
        Assert.Equal(1, profile.PostsProtected);
    }

    [Fact]
    public async Task ConcurrentFirstPostsOfAStickyUserShareOneTrigger()
    {
        await using var server = await SidecarServer.StartAsync(new Dictionary<string, string?> { ["Sidecar:Batching:MaxBatchSize"] = "2" });
        var answers = await Task.WhenAll(Enumerable.Range(0, 5).Select(i => server.Client.ProtectAsync(Post("uma", $"k{i}", TriggerPolicy.Sticky), server.Auth).ResponseAsync));
        Assert.Single(answers.Select(a => a.Trigger).Distinct());
        var profile = await server.Client.GetUserProfileAsync(new GetUserProfileRequest { UserId = "uma" }, server.Auth);
        Assert.Equal(answers[0].Trigger, profile.StickyTrigger);
    }

    [Fact]
    public async Task DeletingAProfileStopsItsPostsInFlightAndNothingOfThemIsKept()
    {
        await using var server = await SidecarServer.StartAsync(With(("Sidecar:Protection:Medium:PgdSteps", "400")));
        var running = server.Client.ProtectAsync(Post("vera", "d1"), server.Auth).ResponseAsync;
        await Task.Delay(300);
        await server.Client.DeleteUserProfileAsync(new DeleteUserProfileRequest { UserId = "vera" }, server.Auth);
        var stopped = await Assert.ThrowsAsync<RpcException>(() => running);
        Assert.Equal(StatusCode.Cancelled, stopped.StatusCode);
        await Task.Delay(200);
        var e = await Assert.ThrowsAsync<RpcException>(async () => await server.Client.GetUserProfileAsync(new GetUserProfileRequest { UserId = "vera" }, server.Auth));
        Assert.Equal(StatusCode.NotFound, e.StatusCode);
    }

    [Fact]
    public async Task OnShutdownPostsInFlightFinishAndNewOnesAreTurnedAway()
    {
        await using var server = await SidecarServer.StartAsync(new Dictionary<string, string?> { ["Sidecar:Batching:MaxWait"] = "00:00:01.500" });
        var admission = server.Services.GetRequiredService<AdmissionControl>();
        var inFlight = server.Client.ProtectAsync(Post("walt", "w1"), server.Auth).ResponseAsync;   // waits 1.5 s for its batch
        await Task.Delay(300);
        var stopping = server.StopAsync();
        await Task.Delay(100);
        Assert.True(admission.Draining);
        var late = await Assert.ThrowsAsync<RpcException>(async () => await server.Client.ProtectAsync(Post("walt", "w2"), server.Auth));
        Assert.Equal(StatusCode.Unavailable, late.StatusCode);
        var answer = await inFlight;   // finished, not cut off
        Assert.Equal("w1", answer.PostId);
        Assert.NotEmpty(answer.Image);
        await stopping;
    }
}
