using Unlearnable.Clip.Text;
using System.Diagnostics;
using Microsoft.Extensions.Options;
using TorchSharp;
using Unlearnable.Clip.Checkpoints;
using Unlearnable.Clip.Model;
using Unlearnable.Clip.Runtime;
using Unlearnable.Data;
using Unlearnable.Data.Synthetic;
using Unlearnable.Training;
using static TorchSharp.torch;

namespace Unlearnable.Sidecar.Model;

/// <summary>
/// The surrogate CLIP every batch protects against, loaded once and warmed before the server
/// reports SERVING. Without a configured checkpoint it trains a small default on synthetic
/// scenes (and keeps it next to the database, so a restart loads it instead of training again).
/// A configured masked LM (natural triggers) is loaded with it.
/// Only the micro-batcher's single worker uses the model, so it needs no lock.
/// </summary>
public sealed class WarmSurrogate(IOptions<SidecarOptions> options, TriggerVocabularies vocabularies, TorchThread torch, ILogger<WarmSurrogate> log) : BackgroundService
{
    readonly TaskCompletionSource _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
    ClipModel? _model;

    public bool IsReady => _ready.Task.IsCompletedSuccessfully;
    public Task Ready => _ready.Task;
    public string? Failure { get; private set; }
    public ClipModel Model => _model ?? throw new InvalidOperationException("the surrogate is not loaded yet");
    public Device Device { get; private set; } = CPU;
    public string Description { get; private set; } = "loading";

    /// <summary>Fixed extra pairs that pad small batches: a contrastive loss needs negatives.</summary>
    public IReadOnlyList<(float[] Pixels01, string Caption)> Anchors { get; private set; } = [];

    protected override Task ExecuteAsync(CancellationToken stoppingToken) => torch.RunAsync(() =>
    {
        try
        {
            Load(stoppingToken);
            _ready.TrySetResult();
        }
        catch (Exception e)
        {
            Failure = e.Message;
            log.LogCritical(e, "The surrogate could not be loaded; the server stays NOT_SERVING");
            _ready.TrySetException(e);
        }
    });

    void Load(CancellationToken cancel)
    {
        var config = options.Value.Model;
        var clock = Stopwatch.StartNew();
        TorchRuntime.Seed(config.Seed);
        Device = Devices.Resolve(config.Device);
        var model = string.IsNullOrWhiteSpace(config.Checkpoint) ? DefaultSurrogate(config, cancel)
            : ClipCheckpoint.Load(config.Checkpoint, Device, config.NamedPreset, config.QuickGelu);
        model.to(Device);
        model.eval();
        vocabularies.Load(Device);
        int size = model.Config.Vision.ImageSize;
        Anchors = SyntheticScenes.Generate(Math.Max(2, options.Value.Batching.MinContrastiveBatch), seed: 7_000 + config.Seed, testImages: 0, size: size).Items
            .Select(item => (Pixels01(item.Image, size), item.Captions[0])).ToList();
        Warm(model, size);
        _model = model;
        Description = $"{model.Config.Name} ({(string.IsNullOrWhiteSpace(config.Checkpoint) ? "the public model, " + config.DefaultModel.Describe() : Path.GetFileName(config.Checkpoint))})";
        log.LogInformation("Surrogate {Model} ready on {Device} in {Seconds:F1} s", Description, Device, clock.Elapsed.TotalSeconds);
    }

    ClipModel DefaultSurrogate(ModelOptions config, CancellationToken cancel)
    {
        var preset = config.NamedPreset ?? ClipPresets.Get("tiny", config.QuickGelu);
        var recipe = config.DefaultModel;
        var cached = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(options.Value.Profiles.DatabasePath))!, recipe.FileName(preset));
        if (File.Exists(cached))
        {
            log.LogInformation("Loading the public model from {Path}", cached);
            return ClipCheckpoint.Load(cached, Device);
        }
        log.LogInformation("No checkpoint configured: training the public {Preset} model on {Data} for {Epochs} epochs", preset.Name, recipe.Describe(), recipe.Epochs);
        var model = recipe.Train(preset, Device, onStep: p =>
        {
            if (p.Step == p.StepsPerEpoch) log.LogInformation("Public model: epoch {Epoch}/{Epochs}, loss {Loss:F3}", p.Epoch, p.Epochs, p.Loss);
        }, cancel: cancel);
        ClipCheckpoint.SaveAtomically(model, cached);   // replicas may share the folder
        return model;
    }

    // One forward and backward through both towers, so the first real batch pays no start-up costs.
    void Warm(ClipModel model, int size)
    {
        using var scope = NewDisposeScope();
        var pixels = tensor(Anchors.SelectMany(a => a.Pixels01).ToArray(), [Anchors.Count, 3, size, size]).to(Device).requires_grad_(true);
        var ids = TextTensors.Batch(Anchors.Select(a => a.Caption).ToList(), model.Config.Text.ContextLength, Device);
        var loss = ContrastiveLoss.Compute(model.Logits(model.EncodeImage(PixelSpace.Normalize(pixels)), model.EncodeText(ids)));
        autograd.grad([loss], [pixels]);
    }

    static float[] Pixels01(ImageSource image, int size)
    {
        using var bitmap = Imaging.SafeImageDecoder.Decode(image.ReadBytes());
        return Imaging.ClipPreprocess.ToChw01(bitmap, size);
    }

    public override void Dispose()
    {
        _model?.Dispose();
        base.Dispose();
    }
}
