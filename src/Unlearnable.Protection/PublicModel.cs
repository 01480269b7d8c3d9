using Unlearnable.Clip.Checkpoints;
using Unlearnable.Clip.Model;
using Unlearnable.Clip.Runtime;
using Unlearnable.Data.Synthetic;
using Unlearnable.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Unlearnable.Protection;

/// <summary>
/// How the embedded stand-in for a public pre-trained CLIP is made: a model trained on captioned synthetic scenes
/// (never anyone's photos). Hackers fine-tune a public model rather than train from nothing, so both sides use this
/// one recipe: attack jobs fine-tune from it, and the sidecar protects against it when no checkpoint is configured,
/// as a deployment protects against the public weights (OpenAI's CLIP) that hackers start from. Error-minimising
/// noise is specific to the model it was optimised on: on real faces it keeps 92 % of the protection on average against
/// the model it was made on and 27 % against the same recipe at another seed (README, "The surrogate is the public model").
/// </summary>
/// <param name="Images">Captioned scenes trained on.</param>
/// <param name="Epochs">Passes over them.</param>
/// <param name="Seed">The release: initial weights, batch order and (Seed + 1) the scenes.</param>
public sealed record PublicModel(int Images = 1000, int Epochs = 20, int Seed = 0)
{
    public const int BatchSize = 64, WarmupSteps = 20;
    /// <summary>What a spec or a server may ask for: a contrastive batch needs 2 pairs; the upper bounds keep one job or start-up finite.</summary>
    public const int MinImages = 2, MaxImages = 200_000, MaxEpochs = 1_000;

    /// <summary>A name for the cached weights that changes with anything that changes them.</summary>
    public string FileName(ClipConfig config) => $"public-{config.Name}{(config.QuickGelu ? "-quickgelu" : "")}-{Images}x{Epochs}-seed{Seed}.safetensors";

    /// <summary>Trains the model (resuming from <paramref name="checkpoint"/>'s saved state when there is one).</summary>
    public ClipModel Train(ClipConfig config, Device device, string? checkpoint = null, Action<StepProgress>? onStep = null, CancellationToken cancel = default)
    {
        var scenes = SyntheticScenes.Generate(Images, Seed + 1, testImages: 0, size: config.Vision.ImageSize).Items;
        TorchRuntime.Seed(Seed);
        var model = checkpoint is not null && File.Exists(ClipTrainer.StatePath(checkpoint)) ? ClipCheckpoint.Load(checkpoint, device) : new ClipModel(config);
        model.to(device);
        new ClipTrainer(model, new TrainingOptions { Epochs = Epochs, BatchSize = BatchSize, Seed = Seed, WarmupSteps = WarmupSteps }, device) { OnStep = onStep }
            .Train(scenes, new ImageTensors(config.Vision.ImageSize), checkpoint, cancel);
        return model;
    }
}
