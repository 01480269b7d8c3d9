using Google.Protobuf;
using Grpc.Core;
using Unlearnable.Clip.Checkpoints;
using Unlearnable.Clip.Model;
using Unlearnable.Contracts.V1;
using Unlearnable.Evaluation;
using Unlearnable.Protection;
using Unlearnable.Tests.Shared;

namespace Unlearnable.Sidecar.Tests;

/// <summary>
/// What a deployment configures about its models: natural (masked-LM) triggers, and a surrogate
/// given as config-less weights the way OpenAI and open_clip publish them.
/// </summary>
[Collection("sidecar")]
[Trait("Kind", "Process")]
public class ModelConfigurationTests
{
    static ProtectRequest Post(string user, string post, ProtectOptions options) => new()
    {
        UserId = user, PostId = post, Image = ByteString.CopyFrom(TestImages.Jpeg(96, 72)),
        Caption = "a quiet photo of the river", Options = options,
    };

    [Fact]
    public async Task AMaskedLmServesNaturalTriggersAndIsListed()
    {
        await using var server = await SidecarServer.StartAsync(new Dictionary<string, string?> { ["Sidecar:Protection:MaskedLm"] = TinyBert.Write() });
        var info = await server.Client.GetServerInfoAsync(new GetServerInfoRequest(), server.Auth);
        Assert.Equal(["common-words", "full", "mlm"], info.Vocabularies);
        Assert.Equal("common-words", info.DefaultVocabulary);

        var response = await server.Client.ProtectAsync(Post("nora", "m1", new ProtectOptions { Vocabulary = "mlm", TriggerLength = 2 }), server.Auth);
        var words = response.Trigger.Split(' ');
        Assert.Equal(2, words.Length);
        // Every trigger word is one the masked LM can propose: a whole word of its vocabulary that is one CLIP token.
        var proposable = TinyBert.Pieces.Where(p => !p.StartsWith('[') && !p.StartsWith('#') && TriggerVocabulary.SingleToken(p) is not null).ToHashSet();
        Assert.All(words, w => Assert.Contains(w, proposable));
    }

    [Fact]
    public async Task WithoutACheckpointTheSurrogatesAreTheDefaultEnsembleThatAttackJobsDownloadAndHarden()
    {
        // The public recipe at toy size (64 scenes, 1 epoch, release 0; hardened for 2 steps), on the CPU like the training below.
        await using var server = await SidecarServer.StartAsync(new Dictionary<string, string?> { ["Sidecar:Model:Device"] = "cpu" });
        var info = await server.Client.GetServerInfoAsync(new GetServerInfoRequest(), server.Auth);
        Assert.Equal(PublicModel.DefaultEnsemble, info.Members.Select(m => m.Architecture));
        Assert.All(info.Members, m => Assert.Equal(0, m.Release));
        Assert.Contains("adversarially fine-tuned for 2 steps", info.Model);

        // A posts job's default surrogates are these members, hardened the same way; its hacker downloads the plain releases.
        var spec = new AttackSpec { Seed = 0, Attack = new HackerSpec(PreTrainImages: 64, PreTrainEpochs: 1), Protection = new ProtectionSpec(ProtectionSource.Posts, Hardening: new HardeningSpec(Steps: 2)) };
        Assert.Equal(info.Members.Select(m => (m.Architecture, m.Release)), spec.PostSurrogates().Select(m => (m.Preset, m.Seed)));
        var recipe = AttackJob.PublicRecipe(spec, spec.Seed);
        var hardening = spec.Protection.HardeningSettings(spec.ProtectionSeed)!;
        foreach (var preset in PublicModel.DefaultEnsemble)
        {
            var config = spec.Architecture(preset);
            using var served = ClipCheckpoint.Load(Path.Combine(server.Folder, recipe.FileName(config)), TorchSharp.torch.CPU);
            using var servedHardened = ClipCheckpoint.Load(Path.Combine(server.Folder, hardening.FileName(recipe.FileName(config))), TorchSharp.torch.CPU);
            using var hackers = recipe.Train(config, TorchSharp.torch.CPU);   // on another thread of another host: the same weights
            AssertSameWeights(hackers, served, $"{preset}: the sidecar's public model and the hacker's download");
            hardening.Harden(hackers, recipe, TorchSharp.torch.CPU);
            AssertSameWeights(hackers, servedHardened, $"{preset}: the sidecar's hardened member and the attack job's");
        }
    }

    static void AssertSameWeights(ClipModel expected, ClipModel actual, string what)
    {
        var actualWeights = actual.state_dict();
        foreach (var (name, weights) in expected.state_dict())
            Assert.True(weights.equal(actualWeights[name]).all().item<bool>(), $"{name} differs between {what}");
    }

    [Fact]
    public async Task WithPublicFacesTheSidecarAndTheHackerTrainTheSameFaceAwareModel()
    {
        // Named photos of people in no evaluation (identity folders, as LFW lays them out), beside the 64 toy scenes.
        var faces = Path.Combine(TestFolders.New(), "public-faces");
        Unlearnable.Data.Synthetic.Faces.SyntheticIdentities.Write(faces, identities: 6, photosPerIdentity: 3, seed: 11);
        await using var server = await SidecarServer.StartAsync(new Dictionary<string, string?>
        {
            ["Sidecar:Model:Device"] = "cpu", ["Sidecar:Model:PublicFaces"] = faces,
        });
        var spec = new AttackSpec { Seed = 0, Attack = new HackerSpec(PreTrainImages: 64, PreTrainEpochs: 1, PreTrainFaces: faces) };
        var recipe = AttackJob.PublicRecipe(spec, spec.Seed);
        var config = spec.Architecture("tiny");
        Assert.Equal(64 + 6 * 3, recipe.Pairs(config.Vision.ImageSize).Count);
        var cached = Path.Combine(server.Folder, recipe.FileName(config));
        Assert.True(File.Exists(cached), $"the sidecar cached its face-aware model as {recipe.FileName(config)}");
        Assert.NotEqual(recipe with { Faces = null }, recipe);
        Assert.NotEqual((recipe with { Faces = null }).FileName(config), recipe.FileName(config));
        using var served = ClipCheckpoint.Load(cached, TorchSharp.torch.CPU);
        using var hackers = recipe.Train(config, TorchSharp.torch.CPU);
        using var scenesOnly = (recipe with { Faces = null }).Train(config, TorchSharp.torch.CPU);
        var servedWeights = served.state_dict();
        var scenesWeights = scenesOnly.state_dict();
        foreach (var (name, weights) in hackers.state_dict())
            Assert.True(weights.equal(servedWeights[name]).all().item<bool>(), $"{name} differs between the sidecar's surrogate and the hacker's pre-trained model");
        Assert.Contains(hackers.state_dict(), kv => kv.Value.dtype == TorchSharp.torch.ScalarType.Float32 && !kv.Value.equal(scenesWeights[kv.Key]).all().item<bool>());

        var info = await server.Client.GetServerInfoAsync(new GetServerInfoRequest(), server.Auth);
        Assert.Contains("named faces", info.Model);
    }

    [Fact]
    public async Task AnEnsembleOfPublicReleasesIsServedListedAndEqualToTheReleasesHackersDownload()
    {
        // Two architectures, two releases (toy size: 64 scenes, 1 epoch), on the CPU like the training below.
        await using var server = await SidecarServer.StartAsync(new Dictionary<string, string?>
        {
            ["Sidecar:Model:Device"] = "cpu",
            ["Sidecar:Model:Members:0:Preset"] = "tiny", ["Sidecar:Model:Members:0:Release"] = "3",
            ["Sidecar:Model:Members:1:Preset"] = "tiny-vit", ["Sidecar:Model:Members:1:Release"] = "4",
        });
        var info = await server.Client.GetServerInfoAsync(new GetServerInfoRequest(), server.Auth);
        Assert.Equal(["tiny", "tiny-vit"], info.Members.Select(m => m.Architecture));
        Assert.Equal([3, 4], info.Members.Select(m => m.Release));
        Assert.All(info.Members, m => Assert.Equal("", m.Checkpoint));
        Assert.Contains(" + ", info.Model);

        var spec = new AttackSpec { Seed = 0, Attack = new HackerSpec(PreTrainImages: 64, PreTrainEpochs: 1) };
        foreach (var (preset, release) in new[] { ("tiny", 3), ("tiny-vit", 4) })
        {
            var recipe = AttackJob.PublicRecipe(spec, release);
            var config = spec.Architecture(preset);
            using var served = ClipCheckpoint.Load(Path.Combine(server.Folder, recipe.FileName(config)), TorchSharp.torch.CPU);
            using var hackers = recipe.Train(config, TorchSharp.torch.CPU);
            var servedWeights = served.state_dict();
            foreach (var (name, weights) in hackers.state_dict())
                Assert.True(weights.equal(servedWeights[name]).all().item<bool>(), $"{name} of {preset} release {release} differs between the sidecar's member and the hacker's download");
        }

        var response = await server.Client.ProtectAsync(Post("quinn", "e1", new ProtectOptions()), server.Auth);
        Assert.Equal(Protection.StrengthLevel.DefaultTriggerLength, response.Trigger.Split(' ').Length);
        Assert.True(response.Image.Length > 0);
    }

    [Fact]
    public async Task AHardenedSurrogateIsServedListedCachedAndEqualToTheOneAnAttackJobHardens()
    {
        await using var server = await SidecarServer.StartAsync(new Dictionary<string, string?>
        {
            ["Sidecar:Model:Device"] = "cpu", ["Sidecar:Model:Hardening:Epsilon"] = "3", ["Sidecar:Model:Hardening:Steps"] = "2",
        });
        var info = await server.Client.GetServerInfoAsync(new GetServerInfoRequest(), server.Auth);
        Assert.Contains("adversarially fine-tuned for 2 steps at ε 3/255 (hardening)", info.Model);

        // An attack job's protection.hardening at the same settings and seed hardens the same release into the same weights.
        var spec = new AttackSpec { Seed = 0, Attack = new HackerSpec(PreTrainImages: 64, PreTrainEpochs: 1), Protection = new ProtectionSpec(ProtectionSource.Posts, Hardening: new HardeningSpec(3, 2)) };
        var recipe = AttackJob.PublicRecipe(spec, spec.Seed);
        var config = spec.Architecture("tiny");
        var hardening = spec.Protection.HardeningSettings(spec.ProtectionSeed)!;
        var cached = Path.Combine(server.Folder, hardening.FileName(recipe.FileName(config)));
        Assert.True(File.Exists(cached), "the hardened copy is cached beside the public model");
        Assert.True(File.Exists(Path.Combine(server.Folder, recipe.FileName(config))), "the public model itself is cached too");
        using var served = ClipCheckpoint.Load(cached, TorchSharp.torch.CPU);
        using var jobs = recipe.Train(config, TorchSharp.torch.CPU);
        hardening.Harden(jobs, recipe, TorchSharp.torch.CPU);
        var servedWeights = served.state_dict();
        foreach (var (name, weights) in jobs.state_dict())
            Assert.True(weights.equal(servedWeights[name]).all().item<bool>(), $"{name} differs between the sidecar's hardened surrogate and the attack job's");

        var response = await server.Client.ProtectAsync(Post("ines", "h1", new ProtectOptions()), server.Auth);
        Assert.InRange(response.Quality.Linf, 1, 8);
    }

    [Fact]
    public async Task ASidecarWithBfloat16ProductsProtectsWithinEpsilonWithNoiseOfItsOwn()
    {
        // The same post to a float32 and a bfloat16 sidecar: both within ε, and the precision reaches the batch (other noise).
        // Torch is started first so this process keeps its capped oneDNN kernels (NativeEnvironment): bfloat16 runs slow here, not wrong.
        Clip.Runtime.TorchRuntime.EnsureLoaded();
        await using var exact = await SidecarServer.StartAsync();
        await using var rounded = await SidecarServer.StartAsync(new Dictionary<string, string?> { ["Sidecar:Model:Precision"] = "Bfloat16" });
        var fromExact = await exact.Client.ProtectAsync(Post("rosa", "b1", new ProtectOptions()), exact.Auth);
        var response = await rounded.Client.ProtectAsync(Post("rosa", "b1", new ProtectOptions()), rounded.Auth);
        Assert.Equal(Protection.StrengthLevel.DefaultTriggerLength, response.Trigger.Split(' ').Length);
        Assert.InRange(response.Quality.Linf, 1, 8);
        Assert.True(double.IsFinite(response.Quality.SurrogateLoss));
        Assert.False(response.Image.Span.SequenceEqual(fromExact.Image.Span), "bfloat16 products gave float32's image: the precision never reached the batch");
        Assert.EndsWith("; products in bfloat16", (await rounded.Client.GetServerInfoAsync(new GetServerInfoRequest(), rounded.Auth)).Model);
        Assert.DoesNotContain("bfloat16", (await exact.Client.GetServerInfoAsync(new GetServerInfoRequest(), exact.Auth)).Model);
    }

    [Fact]
    public async Task WithoutAMaskedLmMlmIsRefusedSayingWhy()
    {
        await using var server = await SidecarServer.StartAsync();
        var info = await server.Client.GetServerInfoAsync(new GetServerInfoRequest(), server.Auth);
        Assert.DoesNotContain("mlm", info.Vocabularies);
        var e = await Assert.ThrowsAsync<RpcException>(async () =>
            await server.Client.ProtectAsync(Post("olga", "m1", new ProtectOptions { Vocabulary = "mlm" }), server.Auth));
        Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
        Assert.Contains("masked language model", e.Status.Detail);
        Assert.Contains("Sidecar:Protection:MaskedLm", e.Status.Detail);

        // A config-less surrogate (OpenAI / open_clip layout: state dict only) is served with the architecture its shapes tell.
        using var model = new ClipModel(ClipPresets.Get("tiny"));
        var weights = Path.Combine(server.Folder, "config-less.safetensors");
        SafeTensors.Write(weights, model.state_dict().Select(kv => (kv.Key, kv.Value)));
        await using var foreign = await SidecarServer.StartAsync(new Dictionary<string, string?>
        {
            ["Sidecar:Model:Checkpoint"] = weights, ["Sidecar:Model:QuickGelu"] = "false",
        });
        var foreignInfo = await foreign.Client.GetServerInfoAsync(new GetServerInfoRequest(), foreign.Auth);
        Assert.StartsWith("inferred-resnet", foreignInfo.Model);
        Assert.Equal(64, foreignInfo.ImageSize);
        var protectedPost = await foreign.Client.ProtectAsync(Post("pia", "c1", new ProtectOptions()), foreign.Auth);
        Assert.Equal(Protection.StrengthLevel.DefaultTriggerLength, protectedPost.Trigger.Split(' ').Length);
    }
}
