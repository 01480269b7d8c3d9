using Google.Protobuf;
using Grpc.Core;
using Unlearnable.Contracts.V1;
using Unlearnable.LoadTest;

namespace Unlearnable.Sidecar.Tests;

/// <summary>
/// The sidecar as a separate process under a flood (many streams, many large posts, many unary
/// calls at once) and under SIGKILL mid-batch. Small sizes here; `unlearnable-loadtest --flood`
/// runs the full-size flood (docs/sidecar.md).
/// </summary>
[Collection("sidecar")]
[Trait("Kind", "Process")]
public class FloodAndChaosTests
{
    static string Folder() => TestFolders.New();

    [Fact]
    public async Task AFloodGetsAnAnswerForEveryPostWithinABoundedMemory()
    {
        await using var sidecar = await SidecarProcess.StartAsync(Folder(), new Dictionary<string, string>
        {
            ["Sidecar__Limits__MaxPostsInFlight"] = "4", ["Sidecar__Limits__MaxPostsInFlightPerTenant"] = "4",
            ["Sidecar__Batching__QueueCapacity"] = "4",
        });
        // More streams than slots, each post larger than a stream's flow-control window: streams wait unread while
        // others are read. (Before the windows were sized for that, this deadlocked; the deadline turns a hang into a failure.)
        using var deadline = new CancellationTokenSource(TimeSpan.FromMinutes(4));
        var report = await FloodRun.RunAsync(new FloodSettings(sidecar.Address, SidecarServer.ApiKey, Streams: 12, PostsPerStream: 3, UnaryPosts: 12,
            Megapixels: 2, ServerPid: sidecar.Pid), deadline.Token);
        Assert.True(report.Unanswered == 0 && report.StreamsEndedInError == 0, report.ToString());
        Assert.Equal(report.Posts, report.Results + report.RefusedByStatus.Values.Sum());
        Assert.True(report.Results > 0, report.ToString());
        Assert.All(report.RefusedByStatus.Keys, status => Assert.Contains(status, new[] { "ResourceExhausted" }));
        // 4 bodies of ~1 MB and their decoded 2 MP images at most, plus unread stream data, on top of the process with its model.
        Assert.True(report.ServerPeakMiB is > 0 and < 2560, report.ToString());
    }

    [Fact]
    public async Task KilledMidBatchThenRestartedNoPostIsLostNoneIsProtectedTwiceAndReplaysMatch()
    {
        var folder = Folder();
        var posts = Enumerable.Range(0, 6).Select(i => new ProtectRequest
        {
            UserId = "chaos", PostId = $"c{i}", Image = ByteString.CopyFrom(TestImages.Jpeg(72, 56 + i)), Caption = $"day {i} at the sea",
        }).ToList();
        var slow = new Dictionary<string, string> { ["Sidecar__Batching__MaxBatchSize"] = "1", ["Sidecar__Protection__Medium__PgdSteps"] = "60" };

        var before = new Dictionary<string, ProtectResponse>();
        await using (var first = await SidecarProcess.StartAsync(folder, slow))
        {
            var calls = posts.Select(p => first.Client.ProtectAsync(p, first.Auth).ResponseAsync).ToList();
            var done = await Task.WhenAny(calls);
            await done;
            first.Kill();   // mid-batch: the others are queued or being protected
            foreach (var call in calls.Where(c => c.IsCompletedSuccessfully))
            {
                var answer = await call;
                before[answer.PostId] = answer;
            }
        }
        Assert.InRange(before.Count, 1, posts.Count - 1);

        await using var second = await SidecarProcess.StartAsync(folder, slow);
        var retried = await Task.WhenAll(posts.Select(p => second.Client.ProtectAsync(p, second.Auth).ResponseAsync));
        foreach (var answer in retried)
        {
            if (before.TryGetValue(answer.PostId, out var published))
            {
                Assert.True(answer.Replayed, $"{answer.PostId} was protected again");
                Assert.Equal(published.Image, answer.Image);
                Assert.Equal(published.ProtectedCaption, answer.ProtectedCaption);
            }
            else Assert.NotEmpty(answer.Image);   // lost with the process, protected now
        }
        var again = await Task.WhenAll(posts.Select(p => second.Client.ProtectAsync(p, second.Auth).ResponseAsync));
        Assert.All(again.Zip(retried), pair => Assert.Equal(pair.Second.Image, pair.First.Image));
        var profile = await second.Client.GetUserProfileAsync(new GetUserProfileRequest { UserId = "chaos" }, second.Auth);
        Assert.Equal(posts.Count, profile.PostsProtected);   // each post counted once: none protected twice
    }
}
