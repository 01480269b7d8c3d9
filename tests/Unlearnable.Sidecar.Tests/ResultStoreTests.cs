using Google.Protobuf;
using Microsoft.Extensions.Options;
using Unlearnable.Contracts.V1;
using Unlearnable.Sidecar.Profiles;

namespace Unlearnable.Sidecar.Tests;

/// <summary>The stored answers behind idempotent replays: first answer wins, the store keeps to its byte budget, nothing is kept for a deleted user.</summary>
public class ResultStoreTests
{
    static ProfileStore Store(long maxBytes = 4L << 30) => new(Options.Create(new SidecarOptions
    {
        Profiles = new ProfileOptions
        {
            DatabasePath = Path.Combine(Path.GetTempPath(), "unlearnable-sidecar-tests", Guid.NewGuid().ToString("N"), "sidecar.db"),
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
}
