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

/// <summary>One surrogate as GetServerInfo lists it: a checkpoint's file name, or a release of the public model.</summary>
public sealed record LoadedMember(string Architecture, string? Checkpoint, int? Release, string Description);

/// <summary>
/// The surrogate CLIPs every batch protects against (one, or an ensemble), loaded once and warmed before the
/// server reports SERVING. A member without a checkpoint is a release of the public model: prepared before start
/// (<c>--prepare-model</c>), or trained at the first start and kept next to the database (<see cref="PublicModelFiles"/>).
/// A configured masked LM (natural triggers) is loaded with them.
/// Only the micro-batcher's single worker uses the models, so they need no lock.
/// </summary>
public sealed class WarmSurrogate(IOptions<SidecarOptions> options, TriggerVocabularies vocabularies, TorchThread torch, Observability.SidecarMetrics metrics,
    ILogger<WarmSurrogate> log) : BackgroundService
{
    readonly TaskCompletionSource _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
    IReadOnlyList<ClipModel>? _members;

    public bool IsReady => _ready.Task.IsCompletedSuccessfully;
    public Task Ready => _ready.Task;
    public string? Failure { get; private set; }
    /// <summary>The ensemble's models (one for a single surrogate); they read one image size.</summary>
    public IReadOnlyList<ClipModel> Members => _members ?? throw new InvalidOperationException("the surrogate is not loaded yet");
    public ClipModel Model => Members[0];
    public IReadOnlyList<LoadedMember> Described { get; private set; } = [];
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

    /// <summary>Where public models trained at start are kept: beside the database, so a restart on the same volume loads them.</summary>
    public static string CacheFolder(SidecarOptions options) => Path.GetDirectoryName(Path.GetFullPath(options.Profiles.DatabasePath))!;

    void Load(CancellationToken cancel)
    {
        var config = options.Value.Model;
        var clock = Stopwatch.StartNew();
        // The cap was lifted (or not) when the app was built, before the host's threads started.
        if (config.Precision == MatmulPrecision.Bfloat16 && TorchRuntime.BFloat16KernelsMissing() is { } missing)
            log.LogWarning("Sidecar:Model:Precision is Bfloat16 but products will be slower than Float32: {Missing}", missing);
        int threads = TorchRuntime.UseHostThreads();
        metrics.Threads.WithLabels("torch").Set(threads);
        metrics.Threads.WithLabels("codec").Set(Posts.CodecGate.Capacity);
        log.LogInformation("{Threads} torch threads and {Codec} codec slots for {Cores} cores", threads, Posts.CodecGate.Capacity, Environment.ProcessorCount);
        TorchRuntime.Seed(config.Seed);
        Device = Devices.Resolve(config.Device);
        var publicModels = new PublicModelFiles(config, CacheFolder(options.Value), log);
        var members = new List<ClipModel>();
        var described = new List<LoadedMember>();
        try
        {
            foreach (var member in config.Surrogates())
            {
                var model = member.IsPublicModel ? publicModels.Load(member, Device, cancel)
                    : ClipCheckpoint.Load(member.Checkpoint!, Device, member.NamedPreset, member.QuickGelu);
                members.Add(model);
                model.to(Device);
                model.eval();
                int? release = member.IsPublicModel ? config.ReleaseOf(member) : null;
                described.Add(new LoadedMember(model.Config.Name, member.IsPublicModel ? null : Path.GetFileName(member.Checkpoint), release,
                    $"{model.Config.Name} ({(release is { } r ? $"the public model release {r}, " + config.PublicModel(r).Describe() + Hardened(config) : Path.GetFileName(member.Checkpoint))})"));
            }
            Protection.Surrogates.Checked(members);
            if (config.Hardening.Steps is > 0 && !config.Surrogates().Any(m => m.IsPublicModel))
                log.LogWarning("Sidecar:Model:Hardening:Steps is {Steps} but every surrogate is a checkpoint, used as it is: only public-model members are hardened", config.Hardening.Steps);
        }
        catch
        {
            foreach (var model in members) model.Dispose();
            throw;
        }
        vocabularies.Load(Device);
        int size = members[0].Config.Vision.ImageSize;
        Anchors = SyntheticScenes.Generate(Math.Max(2, options.Value.Batching.MinContrastiveBatch), seed: 7_000 + config.Seed, testImages: 0, size: size).Items
            .Select(item => (Pixels01(item.Image, size), item.Captions[0])).ToList();
        using (ReducedPrecision.Enter(config.Precision))   // the first batch should not pay for the precision's kernels
            foreach (var model in members) Warm(model, size);
        _members = members;
        Described = described;
        Description = string.Join(" + ", described.Select(d => d.Description)) + (config.Precision == MatmulPrecision.Bfloat16 ? "; products in bfloat16" : "");
        log.LogInformation("Surrogate {Model} ready on {Device} in {Seconds:F1} s", Description, Device, clock.Elapsed.TotalSeconds);
    }

    static string Hardened(ModelOptions config) => config.HardeningSettings() is { } h ? ", " + h.Describe() : "";

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
        foreach (var model in _members ?? []) model.Dispose();
        base.Dispose();
    }
}
