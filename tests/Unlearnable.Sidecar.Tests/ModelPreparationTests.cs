using Unlearnable.Contracts.V1;
using Unlearnable.Tests;

namespace Unlearnable.Sidecar.Tests;

/// <summary>
/// A pod whose public model was prepared before start (<c>--prepare-model</c>, as the image build and init containers
/// run it) loads it instead of training, and the prepared weights are the ones a sidecar would have trained itself.
/// </summary>
[Trait("Kind", "Process")]
public class ModelPreparationTests
{
    // The small recipe SidecarProcess starts with, so the prepared files are the ones its sidecars look for.
    static readonly Dictionary<string, string> Recipe = ToyPublicModel.Environment();
    static readonly string FileName = ToyPublicModel.FileName("tiny", 0);

    /// <summary>The default ensemble's files at release <paramref name="seed"/>: each architecture and its hardened copy, sorted.</summary>
    static string[] DefaultFiles(int seed) => [.. Protection.PublicModel.DefaultEnsemble
        .SelectMany(preset => new[] { ToyPublicModel.FileName(preset, seed), ToyPublicModel.FileName(preset, seed, hardened: true) })
        .Order(StringComparer.Ordinal)];

    static (int Code, string Output) Prepare(params string[] args) => SidecarCommand.Run(args, Recipe);

    static string[] PublicModelsIn(string folder) =>
        Directory.Exists(folder) ? [.. Directory.GetFiles(folder, "public-*.safetensors").Select(f => Path.GetFileName(f)!).Order(StringComparer.Ordinal)] : [];

    [Fact]
    public async Task APreparedModelIsLoadedNotTrainedAndIsTheOneTheSidecarWouldTrain()
    {
        var prepared = TestFolders.New();
        var (code, output) = Prepare("--prepare-model", prepared);
        Assert.True(code == 0, output);
        Assert.Equal(DefaultFiles(0), PublicModelsIn(prepared));
        Assert.DoesNotContain("API keys", output);   // no server, so no keys needed
        var again = Prepare("--prepare-model", prepared);
        Assert.True(again.Code == 0, again.Output);
        Assert.Contains("already prepared", again.Output);

        // A pod pointed at the folder: serving, and nothing trained beside its database.
        var pod = TestFolders.New();
        await using (var sidecar = await SidecarProcess.StartAsync(pod, new Dictionary<string, string> { ["Sidecar__Model__PreparedDirectory"] = prepared }))
        {
            var info = await sidecar.Client.GetServerInfoAsync(new GetServerInfoRequest(), sidecar.Auth);
            Assert.Contains("release 0", info.Model);
            Assert.Equal(Protection.PublicModel.DefaultEnsemble, info.Members.Select(m => m.Architecture));
            Assert.Empty(PublicModelsIn(pod));
        }

        // A pod without it trains at start and caches the same weights, byte for byte.
        var trainer = TestFolders.New();
        await using (await SidecarProcess.StartAsync(trainer)) { }
        Assert.Equal(DefaultFiles(0), PublicModelsIn(trainer));
        Assert.All(DefaultFiles(0), file => Assert.Equal(File.ReadAllBytes(Path.Combine(prepared, file)), File.ReadAllBytes(Path.Combine(trainer, file))));
    }

    [Fact]
    public async Task AFolderPreparedForOtherSettingsIsNotMistakenForThese()
    {
        var prepared = TestFolders.New();
        var (code, output) = Prepare("--prepare-model", prepared, "--Sidecar:Model:Seed", "5");
        Assert.True(code == 0, output);
        Assert.Equal(DefaultFiles(5), PublicModelsIn(prepared));

        var pod = TestFolders.New();
        await using var sidecar = await SidecarProcess.StartAsync(pod, new Dictionary<string, string> { ["Sidecar__Model__PreparedDirectory"] = prepared });
        Assert.Equal(DefaultFiles(0), PublicModelsIn(pod));   // release 0 was not there: trained and cached beside the database
    }

    [Fact]
    public void ThePreparedFolderTheServerWillReadNeedNotExistWhileItIsMade()
    {
        // An image (or init container) sets PreparedDirectory for its pods and prepares that very folder.
        var folder = TestFolders.New();
        var (code, output) = Prepare("--prepare-model", folder, "--Sidecar:Model:PreparedDirectory", folder);
        Assert.True(code == 0, output);
        Assert.Equal(DefaultFiles(0), PublicModelsIn(folder));
    }

    [Fact]
    public void AFileUnderTheRecipesNameHoldingAnotherArchitectureIsRefused()
    {
        var prepared = TestFolders.New();
        var (code, output) = Prepare("--prepare-model", prepared, "--Sidecar:Model:Preset", "tiny-vit", "--Sidecar:Model:Hardening:Steps", "0");
        Assert.True(code == 0, output);
        var vit = Assert.Single(Directory.GetFiles(prepared));
        File.Move(vit, Path.Combine(prepared, FileName));   // a ViT where the tiny ResNet-style default should be

        var config = new ModelOptions { DefaultTrainingImages = ToyPublicModel.Images, DefaultTrainingEpochs = ToyPublicModel.Epochs, PreparedDirectory = prepared, Hardening = new HardeningOptions { Steps = 0 } };
        var files = new Model.PublicModelFiles(config, TestFolders.New(), Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance);
        var e = Assert.Throws<InvalidOperationException>(() => files.Load(config.Surrogates()[0], TorchSharp.torch.CPU, CancellationToken.None));
        Assert.Contains("holds a tiny-vit model, not the tiny", e.Message);
    }

    [Fact]
    public void AHardenedCopyIsPreparedBesideThePublicModelAndLoadedFromThere()
    {
        var prepared = TestFolders.New();
        var config = new ModelOptions { DefaultTrainingImages = ToyPublicModel.Images, DefaultTrainingEpochs = ToyPublicModel.Epochs, Preset = "tiny", Hardening = new HardeningOptions { Steps = ToyPublicModel.HardeningSteps } };
        var log = Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance;
        var written = new Model.PublicModelFiles(config, prepared, log).Prepare(TorchSharp.torch.CPU, CancellationToken.None);
        string hardened = ToyPublicModel.FileName("tiny", 0, hardened: true);
        Assert.Equal([FileName, hardened], written.Select(Path.GetFileName));

        // A pod pointed at the folder loads the hardened copy and makes nothing itself.
        config.PreparedDirectory = prepared;
        var cache = TestFolders.New();
        using var loaded = new Model.PublicModelFiles(config, cache, log).Load(config.Surrogates()[0], TorchSharp.torch.CPU, CancellationToken.None);
        Assert.Empty(PublicModelsIn(cache));
        using var file = Clip.Checkpoints.ClipCheckpoint.Load(Path.Combine(prepared, hardened), TorchSharp.torch.CPU);
        using var plain = Clip.Checkpoints.ClipCheckpoint.Load(Path.Combine(prepared, FileName), TorchSharp.torch.CPU);
        var files = file.state_dict();
        Assert.All(loaded.state_dict(), kv => Assert.True(kv.Value.equal(files[kv.Key]).all().item<bool>(), kv.Key));
        Assert.Contains(plain.state_dict(), kv => kv.Value.dtype == TorchSharp.torch.ScalarType.Float32 && !kv.Value.equal(files[kv.Key]).all().item<bool>());
    }

    [Fact]
    public void WithoutAFolderItSaysWhatItNeeds()
    {
        var (code, output) = Prepare("--prepare-model");
        Assert.Equal(2, code);
        Assert.Contains("--prepare-model needs the folder", output);
    }

    [Fact]
    public void AMissingCheckpointFailsThePreparationNamingIt()
    {
        var (code, output) = Prepare("--prepare-model", TestFolders.New(), "--Sidecar:Model:Checkpoint", "/nonexistent/ViT-B-32.safetensors");
        Assert.Equal(1, code);
        Assert.Contains("/nonexistent/ViT-B-32.safetensors", output);
    }
}
