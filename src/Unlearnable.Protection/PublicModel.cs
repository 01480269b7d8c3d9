using Unlearnable.Clip.Checkpoints;
using Unlearnable.Clip.Model;
using Unlearnable.Clip.Runtime;
using Unlearnable.Data;
using Unlearnable.Data.Formats;
using Unlearnable.Data.Synthetic;
using Unlearnable.Data.Synthetic.Faces;
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
/// the model it was made on and 27 % against the same recipe at another seed (docs/sidecar.md, "The surrogate is the public model").
/// A model that has never seen a face learns little from a few photos of real people, so the second recipe adds
/// <paramref name="Faces"/>: public photos of people in no evaluation, captioned with their names, as a web-trained CLIP has seen them.
/// </summary>
/// <param name="Images">Captioned scenes trained on.</param>
/// <param name="Epochs">Passes over them.</param>
/// <param name="Seed">The release: initial weights, batch order and (Seed + 1) the scenes.</param>
/// <param name="Faces">Identity folders (one per person, named after them: LFW's layout) trained on beside the scenes; null = scenes only.</param>
public sealed record PublicModel(int Images = 1000, int Epochs = 20, int Seed = 0, string? Faces = null)
{
    public const int BatchSize = 64, WarmupSteps = 20;
    /// <summary>What a spec or a server may ask for: a contrastive batch needs 2 pairs; the upper bounds keep one job or start-up finite.</summary>
    public const int MinImages = 2, MaxImages = 200_000, MaxEpochs = 1_000;

    /// <summary>
    /// The recipe's version, in every cached or prepared file's name: bump it with any change to the scenes, the faces'
    /// captions or the training that gives other weights for the same settings, so that files made by older code (a
    /// prepared volume, a long-lived cache) are trained again instead of being taken for these.
    /// </summary>
    public const int RecipeVersion = 1;

    /// <summary>
    /// The architectures the product protects against when nothing else is named (the sidecar's default members, the posts
    /// spec's default surrogates), each at the served release and hardened (<see cref="Robustness.AdversarialHardening"/>'s
    /// defaults). Hackers pick their own public model: noise made against one ResNet kept 68 / 75 % against other ResNet
    /// releases and 60 / 58 % against ViT hackers on LFW dev; against both architectures hardened, 76 / 84 % and 78 / 77 %,
    /// at 1.6× one member's time per post (docs/results.md, "Hardened members of both architectures").
    /// </summary>
    public static readonly IReadOnlyList<string> DefaultEnsemble = ["tiny", "tiny-vit"];

    /// <summary>A name for the cached weights that changes with anything that changes them.</summary>
    public string FileName(ClipConfig config) =>
        $"public-v{RecipeVersion}-{config.Name}{(config.QuickGelu ? "-quickgelu" : "")}-{Images}x{Epochs}-seed{Seed}{(Faces is null ? "" : "-faces" + FacesFingerprint(Faces))}.safetensors";

    /// <summary>What the model is trained on, in words.</summary>
    public string Describe() => Faces is null ? $"{Images} synthetic scenes" : $"{Images} synthetic scenes and the named faces in {Faces}";

    /// <summary>The training pairs: the seeded scenes, then every photo in <see cref="Faces"/> under its person's name.</summary>
    public IReadOnlyList<CaptionedImage> Pairs(int imageSize)
    {
        var scenes = SyntheticScenes.Generate(Images, Seed + 1, testImages: 0, size: imageSize).Items;
        return Faces is null ? scenes : [.. scenes, .. FaceCaptions.Named(IdentityFolders.Load(Faces), Seed).Items];
    }

    /// <summary>
    /// Eight hex digits of a hash over the folder's people, file names and contents: a cached model is reused only for the same
    /// photos (a sidecar and an attack job pointed at copies of one folder agree; a photo added, removed or re-cropped trains anew).
    /// About a third of a second for LFW's 8,909 pre-training photos.
    /// </summary>
    public static string FacesFingerprint(string folder)
    {
        using var hash = System.Security.Cryptography.IncrementalHash.CreateHash(System.Security.Cryptography.HashAlgorithmName.SHA256);
        foreach (var person in IdentityFolders.Load(folder))
            foreach (var image in person.Images)
            {
                hash.AppendData(System.Text.Encoding.UTF8.GetBytes($"{person.Name}/{Path.GetFileName(image.Name)}\n"));
                hash.AppendData(System.Security.Cryptography.SHA256.HashData(image.ReadBytes()));
            }
        return Convert.ToHexStringLower(hash.GetHashAndReset())[..8];
    }

    /// <summary>Trains the model (resuming from <paramref name="checkpoint"/>'s saved state when there is one).</summary>
    public ClipModel Train(ClipConfig config, Device device, string? checkpoint = null, Action<StepProgress>? onStep = null, CancellationToken cancel = default)
    {
        var pairs = Pairs(config.Vision.ImageSize);
        TorchRuntime.Seed(Seed);
        var model = checkpoint is not null && File.Exists(ClipTrainer.StatePath(checkpoint)) ? ClipCheckpoint.Load(checkpoint, device) : new ClipModel(config);
        model.to(device);
        new ClipTrainer(model, new TrainingOptions { Epochs = Epochs, BatchSize = BatchSize, Seed = Seed, WarmupSteps = WarmupSteps }, device) { OnStep = onStep }
            .Train(pairs, new ImageTensors(config.Vision.ImageSize), checkpoint, cancel);
        return model;
    }
}
