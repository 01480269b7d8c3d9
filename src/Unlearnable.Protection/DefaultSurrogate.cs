using TorchSharp;
using Unlearnable.Clip.Model;
using Unlearnable.Data.Synthetic;
using Unlearnable.Training;
using static TorchSharp.torch;

namespace Unlearnable.Protection;

/// <summary>
/// The surrogate the sidecar protects against when no checkpoint is configured: a small CLIP
/// trained briefly on synthetic scenes (256 of them, never any user's data). One recipe, so the
/// sidecar and the in-process posts path (demo, attack jobs) protect against the same model.
/// </summary>
public static class DefaultSurrogate
{
    public const int Steps = 150;
    const int Scenes = 256, BatchSize = 32;

    public static ClipModel Train(ClipConfig preset, Device device, int steps = Steps, int seed = 0, Action<int, int>? onEpoch = null, CancellationToken cancel = default)
    {
        var model = new ClipModel(preset);
        model.to(device);
        var data = SyntheticScenes.Generate(Scenes, seed: seed, testImages: 0, size: preset.Vision.ImageSize).Items;
        int epochs = Math.Max(1, (int)Math.Ceiling(steps / (double)ClipTrainer.BatchSizes(data.Count, BatchSize).Count));
        new ClipTrainer(model, new TrainingOptions { Epochs = epochs, BatchSize = BatchSize, Seed = seed, WarmupSteps = 10 }, device)
        {
            OnEpoch = e => onEpoch?.Invoke(e.Epoch, epochs),
        }.Train(data, new ImageTensors(preset.Vision.ImageSize), cancel: cancel);
        return model;
    }
}
