using Unlearnable.Hosting;
using Unlearnable.Protection;
using Unlearnable.Protection.Robustness;
using Unlearnable.Sidecar.Batching;

namespace Unlearnable.Sidecar;

/// <summary>Everything configurable, bound from the "Sidecar" section (appsettings.json, env Sidecar__...).</summary>
public sealed class SidecarOptions
{
    public ModelOptions Model { get; set; } = new();
    public ProtectionDefaults Protection { get; set; } = new();
    public BatchingOptions Batching { get; set; } = new();
    public LimitOptions Limits { get; set; } = new();
    public ProfileOptions Profiles { get; set; } = new();
    public AuthOptions Auth { get; set; } = new();
    public ShutdownOptions Shutdown { get; set; } = new();
}

public sealed class ModelOptions
{
    /// <summary>
    /// Surrogate checkpoint: ours, or OpenAI / open_clip weights as safetensors (the public weights hackers
    /// fine-tune); empty = the embedded public model (trained on synthetic scenes at the first start): the default ensemble
    /// of its architectures (<see cref="Protection.PublicModel.DefaultEnsemble"/>), or the one <see cref="Preset"/> names.
    /// </summary>
    public string? Checkpoint { get; set; }
    /// <summary>
    /// Architecture (a ClipPresets name) of the one public model served instead of the default ensemble, or of a
    /// Checkpoint that carries no config (empty: inferred from its tensor shapes).
    /// </summary>
    public string? Preset { get; set; }
    /// <summary>QuickGELU (true) or exact GELU (false); empty = the preset's, the checkpoint's own, or true for config-less weights.</summary>
    public bool? QuickGelu { get; set; }

    /// <summary>
    /// Several surrogates protected against at once (an ensemble: noise and triggers follow their mean loss), each a
    /// checkpoint or a release of the public model; empty = the one surrogate that Checkpoint or Preset names, or (neither
    /// named) the default ensemble: the public model's ResNet and ViT at release Seed.
    /// Hackers pick their own public model: noise made against several carries further to the ones it never saw.
    /// </summary>
    public List<MemberOptions> Members { get; set; } = [];

    public string Device { get; set; } = "auto";
    /// <summary>
    /// The surrogates' matrix products while protecting (<see cref="Clip.Model.MatmulPrecision"/>): Float32 (the authors'
    /// arithmetic) or Bfloat16 (2–3× the posts per second at real sizes on CPUs with AVX-512 BF16; docs/performance.md).
    /// </summary>
    public Clip.Model.MatmulPrecision Precision { get; set; }
    /// <summary>Without a checkpoint the surrogates are the embedded public model's (<see cref="Protection.PublicModel"/>): its scenes…</summary>
    public int DefaultTrainingImages { get; set; } = new Protection.PublicModel().Images;
    /// <summary>…and epochs over them (about a minute a member on 2 cores at the defaults, hardening 5 more; cached next to the database).</summary>
    public int DefaultTrainingEpochs { get; set; } = new Protection.PublicModel().Epochs;
    /// <summary>The release of the public model, and the seed of the server's own randomness.</summary>
    public int Seed { get; set; }
    /// <summary>
    /// Identity folders of public photos (LFW's layout, people in no evaluation) the public model is trained on beside the
    /// scenes, so that it has seen faces; empty = scenes only. Attack specs name the same folder as <c>attack.preTrainFaces</c>.
    /// </summary>
    public string? PublicFaces { get; set; }
    /// <summary>
    /// A folder of public models made before start (<c>unlearnable-sidecar --prepare-model FOLDER</c>; the image's is
    /// /opt/unlearnable/models, or a volume an init container filled): a release found there is loaded, not trained.
    /// It may be read-only; a release it lacks is trained at start and cached beside the database. Empty = none.
    /// </summary>
    public string? PreparedDirectory { get; set; }

    /// <summary>
    /// A transfer lever, on by default (Steps 0 turns it off): every public-model member is briefly adversarially fine-tuned on
    /// its own recipe's pairs (<see cref="Protection.Robustness.AdversarialHardening"/>) after it is trained or loaded, and the
    /// hardened copy is cached (and prepared by <c>--prepare-model</c>) beside it. Checkpoint members are used as they are.
    /// </summary>
    public HardeningOptions Hardening { get; set; } = new();

    /// <summary>The hardening every public-model member gets; null = none (Steps 0).</summary>
    public Protection.Robustness.AdversarialHardening? HardeningSettings() =>
        Protection.Robustness.AdversarialHardening.FromSetting(Hardening.Epsilon, Hardening.Steps, Seed);

    /// <summary>The public model's recipe at a release (every public-model member shares the scenes, epochs and faces).</summary>
    public Protection.PublicModel PublicModel(int release) =>
        new(DefaultTrainingImages, DefaultTrainingEpochs, release, string.IsNullOrWhiteSpace(PublicFaces) ? null : Path.GetFullPath(PublicFaces));

    /// <summary>Refuses, at start-up and naming the key, settings that could never load a surrogate.</summary>
    public void Validate(string section = "Sidecar:Model")
    {
        if (!Enum.IsDefined(Precision)) throw new InvalidOperationException($"{section}:Precision is {(int)Precision}; use Float32 or Bfloat16");
        if (DefaultTrainingImages is < Protection.PublicModel.MinImages or > Protection.PublicModel.MaxImages || DefaultTrainingEpochs is < 1 or > Protection.PublicModel.MaxEpochs)
            throw new InvalidOperationException($"{section}:DefaultTrainingImages must be in {Protection.PublicModel.MinImages}..{Protection.PublicModel.MaxImages} (is {DefaultTrainingImages}) " +
                $"and {section}:DefaultTrainingEpochs in 1..{Protection.PublicModel.MaxEpochs} (is {DefaultTrainingEpochs})");
        if (!Protection.Robustness.AdversarialHardening.IsStepsSetting(Hardening.Steps))
            throw new InvalidOperationException($"{section}:Hardening:Steps is {Hardening.Steps}; give {Protection.Robustness.AdversarialHardening.StepsSettingRange}");
        if (!(Hardening.Epsilon is > 0 and <= HardeningOptions.MaxEpsilon))
            throw new InvalidOperationException($"{section}:Hardening:Epsilon is {Hardening.Epsilon}; give more than 0 and at most {HardeningOptions.MaxEpsilon} (1/255 units)");
        if (Members.Count > 0 && (!string.IsNullOrWhiteSpace(Checkpoint) || !string.IsNullOrWhiteSpace(Preset)))
            throw new InvalidOperationException($"{section}:Members names the surrogates; leave {section}:Checkpoint and {section}:Preset empty beside it");
        if (Members.Count > Protection.Surrogates.MaxMembers)
            throw new InvalidOperationException($"{section}:Members has {Members.Count} surrogates; give at most {Protection.Surrogates.MaxMembers} (each costs about as much as one)");
        if (!string.IsNullOrWhiteSpace(PreparedDirectory) && !Directory.Exists(PreparedDirectory))
            throw new InvalidOperationException($"{section}:PreparedDirectory is '{PreparedDirectory}', which is not a folder (a volume not mounted?); " +
                "fill it with --prepare-model or leave it empty to train the public model at start");
        var surrogates = Surrogates();
        var seen = new Dictionary<string, int>();
        for (int i = 0; i < surrogates.Count; i++)
        {
            var member = surrogates[i];
            string key = Members.Count > 0 ? $"{section}:Members:{i}" : section;
            if (!string.IsNullOrWhiteSpace(member.Preset) && !Clip.Model.ClipPresets.Names.Contains(member.Preset, StringComparer.OrdinalIgnoreCase))
                throw new InvalidOperationException($"{key}:Preset is '{member.Preset}'; known presets: {string.Join(", ", Clip.Model.ClipPresets.Names)} (or empty)");
            if (!member.IsPublicModel && Members.Count > 0 && member.Release is not null)
                throw new InvalidOperationException($"{key} names a Checkpoint and a Release; a release is of the public model, which a member without a checkpoint is");
            string identity = member.IsPublicModel ? $"the public {member.PublicPreset.Name} release {ReleaseOf(member)}" : Path.GetFullPath(member.Checkpoint!);
            if (seen.TryGetValue(identity, out int first))
                throw new InvalidOperationException($"{section}:Members:{first} and {section}:Members:{i} are the same surrogate ({identity}); an ensemble's members must differ");
            seen[identity] = i;
        }
        var sizes = surrogates.Where(m => m.IsPublicModel).Select(m => m.PublicPreset.Vision.ImageSize).Distinct().ToList();
        if (sizes.Count > 1)
            throw new InvalidOperationException($"{section}:Members read images of {string.Join(" and ", sizes)} px; an ensemble's members must read one size");
        if (!string.IsNullOrWhiteSpace(PublicFaces) && surrogates.Any(m => m.IsPublicModel))
        {
            try { Data.Formats.IdentityFolders.Load(PublicFaces); }
            catch (Data.DataFormatException e)
            {
                throw new InvalidOperationException($"{section}:PublicFaces ({PublicFaces}) must name identity folders (one per person) the public model is trained on: {e.Message}");
            }
        }
    }

    /// <summary>The release a public-model member is: its own, else the server's <see cref="Seed"/>.</summary>
    public int ReleaseOf(MemberOptions member) => member.Release ?? Seed;

    /// <summary>
    /// The surrogates this server protects against: <see cref="Members"/>, the single one the top-level keys name, or (none
    /// named) the default ensemble's architectures at release <see cref="Seed"/>.
    /// </summary>
    public IReadOnlyList<MemberOptions> Surrogates() =>
        Members.Count > 0 ? Members
        : !string.IsNullOrWhiteSpace(Checkpoint) || !string.IsNullOrWhiteSpace(Preset)
            ? [new MemberOptions { Checkpoint = Checkpoint, Preset = Preset, QuickGelu = QuickGelu, Release = Seed }]
            : [.. Protection.PublicModel.DefaultEnsemble.Select(preset => new MemberOptions { Preset = preset, QuickGelu = QuickGelu, Release = Seed })];
}

/// <summary><see cref="ModelOptions.Hardening"/>: the adversary's ε in 1/255 units and the fine-tuning steps (0 = no hardening; unset = the default).</summary>
public sealed class HardeningOptions
{
    /// <summary>The largest ε a post may ask for by default (Protection:MaxEpsilon's default): a stronger adversary than protections use is no lever.</summary>
    public const double MaxEpsilon = 16;
    public double Epsilon { get; set; } = AdversarialHardening.DefaultEpsilon;
    public int? Steps { get; set; }
}

/// <summary>One surrogate of <see cref="ModelOptions.Members"/>: a checkpoint, or (without one) a release of the public model.</summary>
public sealed class MemberOptions
{
    public string? Checkpoint { get; set; }
    /// <summary>The public model's architecture (empty: tiny), or the architecture of config-less Checkpoint weights.</summary>
    public string? Preset { get; set; }
    public bool? QuickGelu { get; set; }
    /// <summary>Which release of the public model (its seed); empty = the server's Seed. Ignored for a checkpoint.</summary>
    public int? Release { get; set; }

    public bool IsPublicModel => string.IsNullOrWhiteSpace(Checkpoint);
    /// <summary>The preset named, if any.</summary>
    public Clip.Model.ClipConfig? NamedPreset => string.IsNullOrWhiteSpace(Preset) ? null : Clip.Model.ClipPresets.Get(Preset, QuickGelu);
    /// <summary>The public model's architecture: the preset named, or tiny.</summary>
    public Clip.Model.ClipConfig PublicPreset => NamedPreset ?? Clip.Model.ClipPresets.Get("tiny", QuickGelu);
}

public sealed class ProtectionDefaults
{
    /// <summary>The level a post gets when it names none.</summary>
    public ProtectionStrength DefaultStrength { get; set; } = ProtectionStrength.Medium;
    public StrengthSettings Low { get; set; } = new(ProtectionStrength.Low);
    public StrengthSettings Medium { get; set; } = new(ProtectionStrength.Medium);
    public StrengthSettings High { get; set; } = new(ProtectionStrength.High);
    public double MinEpsilon { get; set; } = 2;
    public double MaxEpsilon { get; set; } = 16;
    public int DefaultTriggerLength { get; set; } = StrengthLevel.DefaultTriggerLength;
    /// <summary>The trigger policy of a new user whose first post names none.</summary>
    public Contracts.V1.TriggerPolicy DefaultTriggerPolicy { get; set; } = Contracts.V1.TriggerPolicy.PerPost;
    public int MaxTriggerLength { get; set; } = 8;
    /// <summary>Whether a trigger of <paramref name="words"/> may be given: 1..<see cref="MaxTriggerLength"/>, for the default and a post's ask alike.</summary>
    public bool IsTriggerLength(int words) => words >= 1 && words <= MaxTriggerLength;
    public string DefaultVocabulary { get; set; } = "common-words";
    /// <summary>
    /// A bert-base-uncased-layout folder (config.json, model.safetensors, vocab.txt); when set, the
    /// "mlm" vocabulary (the paper's natural triggers: HotFlip among BERT's top words) is offered.
    /// </summary>
    public string? MaskedLm { get; set; }
    public const string MaskedLmVocabulary = "mlm";

    /// <summary>The vocabularies this server offers: the built-in ones, and "mlm" when a masked LM is configured.</summary>
    public IReadOnlyList<string> Vocabularies() =>
        string.IsNullOrWhiteSpace(MaskedLm) ? TriggerVocabulary.BuiltInNames : [.. TriggerVocabulary.BuiltInNames, MaskedLmVocabulary];
    public double StepSize { get; set; } = StrengthLevel.DefaultStepSize;
    public int TopK { get; set; } = StrengthLevel.DefaultTopK;
    /// <summary>Surrogate steps on a private copy before each batch (0 = use the warm model as is).</summary>
    public int ScratchSurrogateSteps { get; set; }
    /// <summary>
    /// Share of ε spent on the user's own pattern, which all of a user's photos carry and which is kept
    /// in their profile (see <see cref="Protection.UserNoise"/>); the rest is each photo's own. 0 (the default) = sample-wise noise only.
    /// </summary>
    public double UserShare { get; set; } = Protection.UserNoise.DefaultShare;
    /// <summary>Transfer lever: the share of PGD steps whose surrogates see a randomly shrunk and padded view (0 = none).</summary>
    public double InputDiversity { get; set; }
    /// <summary>Transfer lever: ξ by which each PGD step scales the surrogates' residual skips at random (0 = none).</summary>
    public double SkipErosion { get; set; }
    /// <summary>Against an ensemble (<see cref="ModelOptions.Members"/>): each PGD step follows the members' mean loss, or one member drawn per step.</summary>
    public EnsembleStep EnsembleStep { get; set; }

    /// <summary>What protecting a batch of posts means at this level: the post's ε and trigger length, the server's release seed and products.</summary>
    public ProtectionOptions PostOptions(StrengthSettings level, double epsilon, int triggerLength, int seed, Clip.Model.MatmulPrecision precision) =>
        level.ToLevel().PostOptions(epsilon, triggerLength, seed, UserShare, StepSize, TopK, precision, InputDiversity, EnsembleStep, SkipErosion);

    public StrengthSettings Of(ProtectionStrength strength) => strength switch
    {
        ProtectionStrength.Low => Low,
        ProtectionStrength.High => High,
        _ => Medium,
    };
}

/// <summary>One strength level's settings (defaults: <see cref="StrengthLevel.Default"/>); configurable per level.</summary>
public sealed class StrengthSettings
{
    public StrengthSettings() : this(ProtectionStrength.Medium) { }

    public StrengthSettings(ProtectionStrength strength)
    {
        var level = StrengthLevel.Default(strength);
        (Epsilon, Rounds, PgdSteps, RobustTo) = (level.Epsilon, level.Rounds, level.PgdSteps, level.RobustTo);
    }

    /// <summary>Default L∞ bound in 1/255 units (a post may ask for another within the allowed range).</summary>
    public double Epsilon { get; set; }
    /// <summary>Trigger-search + PGD rounds per micro-batch.</summary>
    public int Rounds { get; set; }
    public int PgdSteps { get; set; }
    public TransformSet RobustTo { get; set; }

    public StrengthLevel ToLevel() => new(Epsilon, Rounds, PgdSteps, RobustTo);
}

public sealed class BatchingOptions
{
    public int MaxBatchSize { get; set; } = Protection.PostBatches.SidecarBatchSize;
    /// <summary>How long a batch waits for company after its first post when nothing else is on its way.</summary>
    public TimeSpan MaxWait { get; set; } = TimeSpan.FromMilliseconds(30);
    /// <summary>
    /// How long a batch may wait, in all, while other posts are already inside the server (being
    /// decoded, or being finished and about to be sent back for their users' next posts): a busy
    /// server forms full batches instead of starting small ones, and a lone post never waits for it.
    /// </summary>
    public TimeSpan MaxGather { get; set; } = TimeSpan.FromMilliseconds(250);
    /// <summary>Posts waiting beyond this are refused with RESOURCE_EXHAUSTED.</summary>
    public int QueueCapacity { get; set; } = 64;
    /// <summary>The part of the queue bulk posts may fill, so a backfill never leaves interactive uploads refused.</summary>
    public double BulkQueueShare { get; set; } = 0.75;
    public int BulkQueueCapacity => Math.Max(1, (int)Math.Floor(QueueCapacity * BulkQueueShare));
    /// <summary>Queue timeout of a post that names none (zero = none); time spent decoding is not counted.</summary>
    public TimeSpan DefaultQueueTimeout { get; set; }
    /// <summary>What happens to a post that names no timeout action when its queue timeout passes.</summary>
    public QueueTimeoutAction DefaultTimeoutAction { get; set; } = QueueTimeoutAction.Reject;
    /// <summary>Smaller batches are padded with fixed anchor pairs: a contrastive loss needs negatives.</summary>
    public int MinContrastiveBatch { get; set; } = 8;
}

public sealed class LimitOptions
{
    /// <summary>A 48-megapixel phone JPEG with grain is about 20 MB.</summary>
    public long MaxImageBytes { get; set; } = 32L << 20;
    public long MaxImagePixels { get; set; } = 50_000_000;
    public int MaxImageSide { get; set; } = 12_000;
    /// <summary>Longest over shortest side, checked from the header.</summary>
    public double MaxAspectRatio { get; set; } = 16;
    /// <summary>
    /// Largest answer; separate from the input limits because a lossless answer of a grainy photo can be
    /// several times the JPEG that was uploaded. A larger one is refused with OUT_OF_RANGE (ask for JPEG).
    /// </summary>
    public long MaxAnswerBytes { get; set; } = 128L << 20;
    public int MaxCaptionBytes { get; set; } = 2_000;
    public int MaxIdLength { get; set; } = 128;
    /// <summary>
    /// gRPC message size limit: room above the image limit, so an image a little too large gets
    /// a message naming the image limit; beyond this the transport refuses it (RESOURCE_EXHAUSTED).
    /// </summary>
    public int MaxMessageBytes => (int)Math.Min(int.MaxValue, MaxImageBytes + (4 << 20));
    /// <summary>
    /// How long a unary post's body may take to arrive once it holds an admission slot (a 32 MB upload at 1 MB/s takes 32 s);
    /// a slower one is answered DEADLINE_EXCEEDED and its slot freed. Zero = no deadline. Streams are not bound by it.
    /// </summary>
    public TimeSpan BodyReadTimeout { get; set; } = TimeSpan.FromSeconds(120);

    /// <summary>
    /// Posts whose bodies the server holds at once, over all calls. A unary call beyond it is refused
    /// (RESOURCE_EXHAUSTED) before its body is read; a stream simply stops reading until a post is
    /// answered (HTTP/2 flow control holds the client back). Bodies in memory: at most this × MaxMessageBytes.
    /// </summary>
    public int MaxPostsInFlight { get; set; } = 64;
    /// <summary>Of those, at most this many for one tenant (all its keys together), so one client cannot take every slot.</summary>
    public int MaxPostsInFlightPerTenant { get; set; } = 48;
    /// <summary>Posts of one user being protected at once; beyond it a post is refused with RESOURCE_EXHAUSTED.</summary>
    public int MaxPostsInFlightPerUser { get; set; } = 16;
    /// <summary>
    /// The share of MaxPostsInFlight that streams may hold, waiting for their next post or holding one until its answer
    /// is written: idle sessions never leave unary calls without a slot.
    /// </summary>
    public double StreamShare { get; set; } = 0.5;
    public int StreamSlots => Math.Max(1, (int)Math.Floor(MaxPostsInFlight * StreamShare));
    /// <summary>The share of the server one tenant may hold: MaxPostsInFlightPerTenant of MaxPostsInFlight (of slots, of stream slots, of post memory).</summary>
    public double TenantShare => Math.Min(1.0, (double)MaxPostsInFlightPerTenant / MaxPostsInFlight);
    /// <summary>Of the streams' slots, one tenant's share.</summary>
    public int TenantStreamSlots => Math.Max(1, (int)Math.Floor(StreamSlots * TenantShare));
    /// <summary>Posts one stream has in flight; the stream reads its next post when one is answered.</summary>
    public int MaxPostsInFlightPerStream { get; set; } = 8;
    /// <summary>
    /// Connections and HTTP/2 streams (calls) per connection. Data a client has sent but the server has
    /// not read yet is at most MaxConnections × MaxStreamsPerConnection × 256 KiB (256 MiB at the defaults).
    /// </summary>
    public int MaxConnections { get; set; } = 32;
    /// <summary>Connections to the HTTP listener (/healthz, /metrics), counted apart from the clients' (see <see cref="Admission.ConnectionCaps"/>).</summary>
    public int MaxProbeConnections { get; set; } = 16;
    public int MaxStreamsPerConnection { get; set; } = 32;
    /// <summary>
    /// How long a client connection lives before the server asks it to go (GOAWAY, ± 10 %; calls in flight finish), so
    /// clients that balance per call (round_robin over a headless Service) spread onto replicas added since; zero = forever.
    /// </summary>
    public TimeSpan MaxConnectionAge { get; set; } = TimeSpan.FromMinutes(5);
    public const int StreamWindowBytes = 256 << 10;
    /// <summary>Client data the server may hold unread: every stream's flow-control window.</summary>
    public long UnreadStreamBytes => (long)MaxConnections * MaxStreamsPerConnection * StreamWindowBytes;

    /// <summary>
    /// What posts may hold between admission and their written answer: bodies, decoded images waiting for a batch,
    /// answers not yet written (<see cref="Admission.PostMemory"/>). A post that would pass it is refused
    /// (RESOURCE_EXHAUSTED) before its body is read or once it is decoded.
    /// </summary>
    public long PostMemoryBytes { get; set; } = 1L << 30;
    /// <summary>
    /// What image work (decoding, finishing) may take at once, weighted by pixels and stage (<see cref="Posts.CodecMemory"/>);
    /// empty = room for the largest image allowed (MaxImagePixels) to be finished.
    /// </summary>
    public long? CodecMemoryBytes { get; set; }
    public long CodecMemory => CodecMemoryBytes ?? Posts.CodecMemory.Cost("finish", MaxImagePixels);
    /// <summary>What the surrogate, libtorch and the runtime take before any post (the tiny public model ~0.6 GiB; more for real-size models).</summary>
    public long ModelMemoryBytes { get; set; } = 1L << 30;
    /// <summary>
    /// The memory the server may use (empty = its container's limit from the cgroup, else the machine's memory; not the
    /// .NET heap's own cap, 75 % of it, since libtorch and the codecs allocate outside the heap).
    /// The server refuses to start when the bounds above, with the model's share, do not fit in it.
    /// </summary>
    public long? MemoryBytes { get; set; }

    /// <summary>Everything the bounds let the server hold at once, by part.</summary>
    public IReadOnlyList<(string Setting, long Bytes)> MemoryBounds() =>
    [
        ("ModelMemoryBytes", ModelMemoryBytes), ("PostMemoryBytes", PostMemoryBytes), ("CodecMemoryBytes", CodecMemory),
        ("MaxConnections × MaxStreamsPerConnection × 256 KiB of unread stream data", UnreadStreamBytes),
    ];
}

public sealed class ShutdownOptions
{
    /// <summary>
    /// On SIGTERM health turns NOT_SERVING and new posts are refused (UNAVAILABLE); posts already
    /// admitted get this long to finish before they are cancelled.
    /// </summary>
    public TimeSpan GracePeriod { get; set; } = TimeSpan.FromSeconds(25);
}

public sealed class ProfileOptions
{
    /// <summary>SQLite (this file; the default) or PostgreSQL, which several replicas share.</summary>
    public StoreOptions Store { get; set; } = new();
    /// <summary>The SQLite file, when <see cref="Store"/> is SQLite.</summary>
    public string DatabasePath { get; set; } = "unlearnable-sidecar.db";
    /// <summary>How long a post's result is kept for idempotent replays.</summary>
    public TimeSpan ResultRetention { get; set; } = TimeSpan.FromHours(24);
    /// <summary>Bytes of stored results kept at most; past it the oldest go first (their post ids can no longer be replayed).</summary>
    public long MaxStoredResultBytes { get; set; } = 4L << 30;
    /// <summary>
    /// Bytes of one tenant's stored results kept at most (past it that tenant's oldest go first); empty = an equal share of
    /// <see cref="MaxStoredResultBytes"/> per configured tenant, so no tenant's posts can push out another's.
    /// </summary>
    public long? MaxStoredResultBytesPerTenant { get; set; }

    /// <summary>One tenant's budget when <paramref name="tenants"/> are configured.</summary>
    public long TenantBudget(int tenants) => MaxStoredResultBytesPerTenant ?? MaxStoredResultBytes / Math.Max(1, tenants);
}
