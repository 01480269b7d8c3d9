using Google.Protobuf;
using Microsoft.Extensions.DependencyInjection;
using Unlearnable.Contracts.V1;
using Unlearnable.Data.Synthetic;

namespace Unlearnable.Sidecar.Tests;

/// <summary>How batches form: a busy server waits for posts already on their way; a lone post does not wait for anyone.</summary>
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
            ["Sidecar:Batching:MaxWaitMilliseconds"] = "1",
            ["Sidecar:Batching:MaxGatherMilliseconds"] = "20000",
        });
        // A lone post: nothing else in the server, so it starts after MaxWait, not MaxGather.
        var lone = await server.Client.ProtectAsync(Post("ada", "lone", TestImages.Jpeg(96, 72)), server.Auth);
        Assert.Equal(1, lone.Quality.BatchSize);
        Assert.True(lone.Quality.QueuedMs < 5_000, $"a lone post waited {lone.Quality.QueuedMs} ms");

        // A 24 MP photo is still being decoded when a small post is queued: the small one waits for it
        // (with a 1 ms MaxWait alone, they would run as two batches of one). Every codec slot is held
        // until both posts are in the server, so neither can be queued before the other is counted.
        var inFlight = server.Services.GetRequiredService<Posts.InFlightPosts>();
        var codecs = server.Services.GetRequiredService<Posts.CodecGate>();
        var slots = new List<IDisposable>();
        for (int i = 0; i < Posts.CodecGate.Capacity; i++) slots.Add(await codecs.HoldAsync(CancellationToken.None));
        var big = server.Client.ProtectAsync(Post("bea", "big", PhonePhoto.Jpeg(6000, 4000, quality: 92, seed: 3)), server.Auth).ResponseAsync;
        for (int i = 0; i < 1000 && inFlight.Count < 1; i++) await Task.Delay(10);
        var smallCall = server.Client.ProtectAsync(Post("cal", "small", TestImages.Jpeg(96, 72)), server.Auth).ResponseAsync;
        for (int i = 0; i < 1000 && inFlight.Count < 2; i++) await Task.Delay(10);
        Assert.Equal(2, inFlight.Count);
        slots.ForEach(s => s.Dispose());
        var small = await smallCall;
        var bigAnswer = await big;
        Assert.True(small.Quality.BatchSize == 2, $"small: batch {small.Quality.BatchSize}, queued {small.Quality.QueuedMs} ms; big: batch {bigAnswer.Quality.BatchSize}, queued {bigAnswer.Quality.QueuedMs} ms");
        Assert.Equal(2, bigAnswer.Quality.BatchSize);
    }
}
