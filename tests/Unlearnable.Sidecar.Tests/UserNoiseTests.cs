using Google.Protobuf;
using Microsoft.Extensions.Options;
using Unlearnable.Contracts.V1;
using Unlearnable.Data.Synthetic;
using Unlearnable.Imaging;
using Unlearnable.Sidecar.Profiles;

namespace Unlearnable.Sidecar.Tests;

/// <summary>A user's photos share a pattern kept in their profile: it survives between batches, stays within its share of ε and goes with the profile.</summary>
[Collection("sidecar")]
[Trait("Kind", "Process")]
public class UserNoiseTests(SharedSidecar shared) : IClassFixture<SharedSidecar>
{
    SidecarServer Server => shared.Server;

    /// <summary>A user of the tenant of the test server's key, as its store knows them.</summary>
    static UserKey Key(string id) => new(Hosting.ApiKeyPolicy.KeyTenant(SidecarServer.ApiKey), id);

    [Fact]
    public async Task OnePersonsPostsInSeparateBatchesShareTheirPatternAndDeletingTheProfileDeletesIt()
    {
        var scenes = SyntheticScenes.Generate(3, seed: 21, testImages: 0, size: 64).Items.Select(s => s.Image.ReadBytes()).ToList();
        string alice = "alice-" + Guid.NewGuid().ToString("N")[..8], bob = "bob-" + Guid.NewGuid().ToString("N")[..8];

        // One at a time, so each post is its own batch: what they share can only come from alice's profile.
        var first = await Post(alice, "a1", scenes[0]);
        var second = await Post(alice, "a2", scenes[1]);
        var other = await Post(bob, "b1", scenes[2]);

        var store = new SqliteProfileStore(Options.Create(new SidecarOptions { Profiles = { DatabasePath = Path.Combine(Server.Folder, "sidecar.db") } }));
        var pattern = store.UserNoise([Key(alice)], 64)[Key(alice)];
        Assert.InRange(pattern.Min(), -4, -1);   // ε 8 by default, half of it the user's
        Assert.InRange(pattern.Max(), 1, 4);

        double same = Correlation(Noise(scenes[0], first), Noise(scenes[1], second));
        double different = Correlation(Noise(scenes[0], first), Noise(scenes[2], other));
        Assert.True(same > 0.2 && same > different + 0.15, $"noise correlation: alice's two photos {same:F2}, alice's and bob's {different:F2}");

        await Server.Client.DeleteUserProfileAsync(new DeleteUserProfileRequest { UserId = alice }, Server.Auth);
        Assert.Empty(store.UserNoise([Key(alice)], 64));
        Assert.Single(store.UserNoise([Key(bob)], 64));
    }

    [Fact]
    public async Task ALowStrengthPostDoesNotShrinkAPatternBuiltAtAHigherOne()
    {
        var scenes = SyntheticScenes.Generate(2, seed: 23, testImages: 0, size: 64).Items.Select(s => s.Image.ReadBytes()).ToList();
        string carol = "carol-" + Guid.NewGuid().ToString("N")[..8];
        var store = new SqliteProfileStore(Options.Create(new SidecarOptions { Profiles = { DatabasePath = Path.Combine(Server.Folder, "sidecar.db") } }));

        await Post(carol, "high", scenes[0], new ProtectOptions { Strength = ProtectionStrength.High });   // ε 12: a pattern of up to ±6
        var built = store.UserNoise([Key(carol)], 64)[Key(carol)];
        Assert.InRange(built.Max(v => Math.Abs((int)v)), 3, 6);

        await Post(carol, "low", scenes[1], new ProtectOptions { Strength = ProtectionStrength.Low });     // ε 4: this post sees it cut to ±2
        var after = store.UserNoise([Key(carol)], 64)[Key(carol)];
        // The low post's steps (2 of them in the test settings) are applied to the stored pattern, not to a copy cut to ±2.
        Assert.True(after.Zip(built).Any(p => p.First != p.Second), "the low post still moved the pattern");
        Assert.InRange(after.Zip(built).Max(p => Math.Abs(p.First - p.Second)), 1, 2);
        Assert.InRange(after.Max(v => Math.Abs((int)v)), 3, 6);
    }

    async Task<byte[]> Post(string user, string post, byte[] image, ProtectOptions? options = null) =>
        (await Server.Client.ProtectAsync(new ProtectRequest { UserId = user, PostId = post, Image = ByteString.CopyFrom(image), Caption = "a photo of a day out", Options = options ?? new() }, Server.Auth))
        .Image.ToByteArray();

    static float[] Noise(byte[] clean, byte[] published)
    {
        using var a = SafeImageDecoder.Decode(clean);
        using var b = SafeImageDecoder.Decode(published);
        var noise = new List<float>();
        for (int y = 0; y < a.Height; y++)
            for (int x = 0; x < a.Width; x++)
            {
                var (p, q) = (a.GetPixel(x, y), b.GetPixel(x, y));
                noise.AddRange([q.Red - p.Red, q.Green - p.Green, q.Blue - p.Blue]);
            }
        return [.. noise];
    }

    static double Correlation(float[] a, float[] b)
    {
        double ma = a.Average(), mb = b.Average(), ab = 0, aa = 0, bb = 0;
        for (int i = 0; i < a.Length; i++) (ab, aa, bb) = (ab + (a[i] - ma) * (b[i] - mb), aa + (a[i] - ma) * (a[i] - ma), bb + (b[i] - mb) * (b[i] - mb));
        return ab / Math.Sqrt(aa * bb);
    }
}
