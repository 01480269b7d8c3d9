using Unlearnable.Contracts.V1;
using Unlearnable.Data.Synthetic;
using Unlearnable.Evaluation;
using Unlearnable.Imaging;
using Unlearnable.Protection;

namespace Unlearnable.Sidecar.Tests;

/// <summary>The evaluation host's black-box path: protect a data set by posting every training pair to a real running sidecar.</summary>
[Collection("sidecar")]
[Trait("Kind", "Process")]
public class BlackBoxEvaluationTests(SharedSidecar shared) : IClassFixture<SharedSidecar>
{
    SidecarServer Server => shared.Server;

    [Fact]
    public async Task AJobProtectsItsTrainingSplitThroughTheSidecarAndAResumeSendsNothingTwice()
    {
        var output = TestFolders.New();
        var spec = new AttackSpec
        {
            Name = "black box", Seed = 2,
            Data = new DataSpec(DataKind.SyntheticScenes, Images: 16, TestImages: 6),
            Protection = new ProtectionSpec(ProtectionSource.Sidecar, SidecarAddress: $"http://127.0.0.1:{Server.GrpcPort}", SidecarApiKey: SidecarServer.ApiKey,
                Epsilon: 6, TriggerLength: 2),
            Attack = new HackerSpec(AttackMode.FromScratch, Epochs: 1, LearningRate: 1e-3, BatchSize: 5, WarmupSteps: 1),
        };
        var user = SidecarProtection.UserIdFor(Path.Combine(output, "work", "sidecar"));
        Assert.Equal(0, await PostsProtected(user));

        var report = await Task.Run(() => new AttackJob(spec, TorchSharp.torch.CPU, output).Run());

        var protection = report.Protection!;
        Assert.Equal("sidecar", protection.Source);
        Assert.Equal(10, protection.Images);
        Assert.InRange(protection.MaxLInfinity, 1, 6);
        Assert.All(protection.ExampleTriggers, t => Assert.Equal(2, t.Split(' ').Length));
        Assert.Equal(["clean", "protected"], report.Arms.Select(a => a.Name));
        Assert.Equal(10, await PostsProtected(user));
        // The job used the sidecar's key but wrote it nowhere: not in its report, its spec copy or any other text file.
        Assert.Null(report.Spec.Protection.SidecarApiKey);
        foreach (var file in Directory.EnumerateFiles(output, "*.json", SearchOption.AllDirectories).Concat(Directory.EnumerateFiles(output, "*.md", SearchOption.AllDirectories)))
            Assert.DoesNotContain(SidecarServer.ApiKey, File.ReadAllText(file));

        // What the hacker trained on is what the sidecar returned: each image within ε of the clean one, every caption behind its trigger.
        var clean = SyntheticScenes.Generate(16, 2, 6, 64).Items.Where(i => i.Split == Data.Split.Train).ToList();
        var published = Data.Formats.CaptionsJsonl.Load(Path.Combine(output, "work", "protected")).Items;
        for (int i = 0; i < clean.Count; i++)
        {
            using var a = SafeImageDecoder.Decode(clean[i].Image.ReadBytes());
            using var b = SafeImageDecoder.Decode(published[i].Image.ReadBytes());
            Assert.InRange(PixelDifference.LInfinity(a, b), 1, 6);
            var trigger = published[i].Captions[0][..^clean[i].Captions[0].Length];
            Assert.Equal(clean[i].Captions.Select(c => trigger + c), published[i].Captions);
        }

        // A lost protected copy is re-read from the sidecar's answers on disk, not posted again.
        Directory.Delete(Path.Combine(output, "work", "protected"), recursive: true);
        var replay = new SidecarProtection(spec.Protection, Path.Combine(output, "work", "sidecar")).Protect(clean, CancellationToken.None).Items;
        Assert.Equal(published.Select(p => p.Captions[0]), replay.Select(p => p.Captions[0]));
        Assert.Equal(10, await PostsProtected(user));
    }

    async Task<long> PostsProtected(string user)
    {
        try { return (await Server.Client.GetUserProfileAsync(new GetUserProfileRequest { UserId = user }, Server.Auth)).PostsProtected; }
        catch (Grpc.Core.RpcException e) when (e.StatusCode == Grpc.Core.StatusCode.NotFound) { return 0; }
    }

    [Fact]
    public async Task EachPersonsPhotosArePostedAsTheirOwnUserAndPgmPhotosArriveAsPng()
    {
        var root = TestFolders.New();
        var people = Data.Synthetic.Faces.SyntheticIdentities.Write(Path.Combine(root, "faces"), identities: 3, photosPerIdentity: 3, seed: 4);
        // The first person's photos become binary PGM, as in ORL.
        foreach (var photo in people[0].Images.Cast<Data.FileImage>())
        {
            File.WriteAllBytes(Path.ChangeExtension(photo.Path, ".pgm"), GreyPgm(photo.Path));
            File.Delete(photo.Path);
        }
        var train = Data.Synthetic.Faces.FaceCaptions.Build(Data.Formats.IdentityFolders.Load(Path.Combine(root, "faces")), seed: 4).Of(Data.Split.Train);
        var spec = new ProtectionSpec(ProtectionSource.Sidecar, SidecarAddress: $"http://127.0.0.1:{Server.GrpcPort}", SidecarApiKey: SidecarServer.ApiKey, TriggerLength: 2);
        var work = Path.Combine(root, "work");

        var posts = new SidecarProtection(spec, work).Protect(train, CancellationToken.None);

        Assert.Equal(3, posts.Users);
        Assert.Equal(2, posts.ConvertedToPng);
        Assert.Contains("3 sidecar users", posts.Describe());
        Assert.Contains("2 images not in JPEG, PNG or WebP converted to PNG", posts.Describe());
        foreach (var owner in train.Select(t => t.Owner).Distinct())
            Assert.Equal(2, await PostsProtected(SidecarProtection.UserIdFor(work, owner)));
        Assert.Equal(0, await PostsProtected(SidecarProtection.UserIdFor(work)));
        for (int i = 0; i < train.Count; i++)
        {
            Assert.Equal(OutputFormat.Png, ImageFormats.Sniff(posts.Items[i].Image.ReadBytes()));
            using var a = SafeImageDecoder.Decode(train[i].Image.ReadBytes());
            using var b = SafeImageDecoder.Decode(posts.Items[i].Image.ReadBytes());
            Assert.InRange(PixelDifference.LInfinity(a, b), 1, 8);
            if (train[i].Owner == "id000") Assert.True(ImageEncoding.IsGrey(b), "a grey PGM face comes back grey");
        }
    }

    static byte[] GreyPgm(string png)
    {
        using var bitmap = SafeImageDecoder.DecodeFile(png);
        var header = System.Text.Encoding.ASCII.GetBytes($"P5\n{bitmap.Width} {bitmap.Height}\n255\n");
        var pixels = new byte[bitmap.Width * bitmap.Height];
        for (int y = 0; y < bitmap.Height; y++)
            for (int x = 0; x < bitmap.Width; x++)
            {
                var c = bitmap.GetPixel(x, y);
                pixels[y * bitmap.Width + x] = (byte)((c.Red * 77 + c.Green * 150 + c.Blue * 29) >> 8);
            }
        return [.. header, .. pixels];
    }

    [Fact]
    public void AStrengthInTheSpecIsTheLevelTheSidecarProtectsAtWithItsOwnEpsilon()
    {
        // epsilon 12 in the spec, strength low: the low level's ε 4 applies.
        var spec = new ProtectionSpec(ProtectionSource.Sidecar, SidecarAddress: $"http://127.0.0.1:{Server.GrpcPort}", SidecarApiKey: SidecarServer.ApiKey,
            Epsilon: 12, TriggerLength: 2, Strength: Protection.ProtectionStrength.Low);
        var items = SyntheticScenes.Generate(4, 3, 0, 64).Items;
        var work = TestFolders.New();
        var published = new SidecarProtection(spec, work).Protect(items, CancellationToken.None).Items;
        for (int i = 0; i < items.Count; i++)
        {
            using var a = SafeImageDecoder.Decode(items[i].Image.ReadBytes());
            using var b = SafeImageDecoder.Decode(published[i].Image.ReadBytes());
            Assert.InRange(PixelDifference.LInfinity(a, b), 1, 4);
        }
    }

    [Fact]
    public void ASidecarThatRefusesThePostsFailsTheJobWithTheSidecarsReason()
    {
        var spec = new ProtectionSpec(ProtectionSource.Sidecar, SidecarAddress: $"http://127.0.0.1:{Server.GrpcPort}", SidecarApiKey: "wrong-key");
        var items = SyntheticScenes.Generate(3, 1, 0, 64).Items;
        var work = TestFolders.New();
        var e = Assert.Throws<SidecarRefusedException>(() => new SidecarProtection(spec, work).Protect(items, CancellationToken.None));
        Assert.Contains("Unauthenticated", e.Message);
        Assert.Contains("not valid", e.Message);
    }
}
