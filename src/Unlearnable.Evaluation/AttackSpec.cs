using System.Text.Json;
using System.Text.Json.Serialization;
using Unlearnable.Protection;
using Unlearnable.Protection.Robustness;

namespace Unlearnable.Evaluation;

/// <summary>
/// One evaluation job, as a privacy team writes it in JSON: which data, how it was protected,
/// how the hacker attacks it, and which extra arms (transfer, poison fraction, robustness) to run.
/// Field names are camelCase; unknown fields are refused so a typo never silently falls back to a default.
/// </summary>
public sealed record AttackSpec
{
    public string Name { get; init; } = "attack";
    public int Seed { get; init; }
    /// <summary>Architecture of the surrogate and of the main hacker (a ClipPresets name).</summary>
    public string Preset { get; init; } = "tiny";
    /// <summary>QuickGELU (true) or exact GELU (false) in every model the job builds; null = each preset's own.</summary>
    public bool? QuickGelu { get; init; }
    public DataSpec Data { get; init; } = new();
    public ProtectionSpec Protection { get; init; } = new();
    public HackerSpec Attack { get; init; } = new();
    public ArmsSpec Arms { get; init; } = new();

    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        WriteIndented = true,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
        ReadCommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        Converters = { new SpecNames.Converter() },
    };

    /// <summary>The config of an architecture this job builds (the preset, with the spec's activation).</summary>
    public Clip.Model.ClipConfig Architecture(string preset) => Clip.Model.ClipPresets.Get(preset, QuickGelu);

    /// <summary>The protection's own draws (PGD pairings and transformations, surrogate batches): <c>protection.seed</c>, else the spec's seed.</summary>
    public int ProtectionSeed => Protection.Seed ?? Seed;

    /// <summary>The release of the public recipe a fine-tuning hacker downloads: <c>attack.preTrainSeed</c>, else the spec's seed.</summary>
    public int HackerRelease() => Attack.PreTrainSeed ?? Seed;

    /// <summary>
    /// What the posts path protects against: <c>protection.members</c>, else the sidecar's default ensemble at the spec's seed
    /// when the hacker's preset is one of its architectures, else (as a sidecar whose <c>Preset</c> names it) that preset's release.
    /// </summary>
    public IReadOnlyList<SurrogateSpec> PostSurrogates() =>
        Protection.Members ?? (Unlearnable.Protection.PublicModel.DefaultEnsemble.Contains(Preset, StringComparer.OrdinalIgnoreCase)
            ? [.. Unlearnable.Protection.PublicModel.DefaultEnsemble.Select(preset => new SurrogateSpec(preset, Seed))]
            : [new SurrogateSpec(Preset, Seed)]);

    /// <summary>The public-model releases the protection is made against: the posts path's surrogates, or the members mem / em name (none: their own surrogate).</summary>
    public IReadOnlyList<SurrogateSpec> ProtectionReleases() => Protection.Source == ProtectionSource.Posts ? PostSurrogates() : Protection.Members ?? [];

    /// <summary>Parses a spec; a malformed document or an unknown field is a <see cref="SpecException"/> naming where.</summary>
    public static AttackSpec Parse(string json)
    {
        try
        {
            return JsonSerializer.Deserialize<AttackSpec>(json, Json) ?? throw new SpecException("$", "the spec is empty (null)");
        }
        catch (JsonException e)
        {
            // Fields are named as the validator names them ("attack.mode"), the document itself as "$".
            throw new SpecException(e.Path is { Length: > 1 } path ? path.TrimStart('$', '.') : "$", e.Message.Split(" Path:")[0]);
        }
    }

    public static AttackSpec Load(string path)
    {
        if (!File.Exists(path)) throw new SpecException("$", $"spec file {path} does not exist");
        var spec = Parse(File.ReadAllText(path));
        // Relative data paths in a spec file are relative to the file, so a spec travels with its data.
        return spec.ResolvePaths(Path.GetDirectoryName(Path.GetFullPath(path))!);
    }

    public AttackSpec ResolvePaths(string baseDir)
    {
        string? Resolve(string? p) => p is null ? null : Path.GetFullPath(p, baseDir);
        return this with
        {
            Data = Data with { Path = Resolve(Data.Path) },
            Protection = Protection with { Path = Resolve(Protection.Path) },
            Attack = Attack with { PreTrained = Resolve(Attack.PreTrained), PreTrainFaces = Resolve(Attack.PreTrainFaces) },
        };
    }

    public string ToJson() => JsonSerializer.Serialize(this, Json);

    /// <summary>The spec as it may be stored, listed and reported: without the sidecar's API key.</summary>
    public AttackSpec WithoutSecrets() =>
        Protection.SidecarApiKey is null ? this : this with { Protection = Protection with { SidecarApiKey = null } };
}

/// <param name="Kind">synthetic-identities, identities (one sub-folder per person), captions (a data folder with train and test splits) or synthetic-scenes.</param>
public sealed record DataSpec(DataKind Kind = DataKind.SyntheticIdentities, string? Path = null, int Identities = 40, int Photos = 8,
    int Images = 2200, int TestImages = 200);

/// <summary>
/// How the training split was protected: not at all, in-process (mem, em), read from a
/// <c>protect</c> output folder, by calling a running sidecar's Protect for every training pair, or
/// as posts (the sidecar's batch path in this process, against its default surrogate, no server needed).
/// Round and step settings apply to the in-process methods, as do <c>restartSurrogate</c> (each round's
/// surrogate starts again from the initial one, the pre-trained model when fine-tuning; default true), <c>robustTo</c> (none, the
/// authors' loop, or platform: noise optimised to survive JPEG re-encoding and downscaling) and
/// <c>userShare</c> (the share of ε spent on a pattern all of one person's photos carry, on identity data;
/// by default the sidecar's for posts, 0 in-process); the
/// sidecar uses its own, at the <c>strength</c> asked for (low, medium or high, with that level's ε;
/// omitted: its default level at <c>epsilon</c>). <c>members</c> (mem, em, posts) protects against several releases of the
/// public recipe at once, an ensemble; unset, posts are protected against the sidecar's default ensemble (its ResNet and ViT
/// at the spec's seed) and mem / em against their surrogate (the pre-trained model when fine-tuning, a fresh one from scratch).
/// Posts only, the sidecar's settings of the same names: <c>scratchSurrogateSteps</c> (surrogate steps on a private copy before
/// each batch) and <c>stickyTriggers</c> (each person's first trigger kept for all their later posts). Transfer levers (mem, em, posts):
/// <c>inputDiversity</c>, the share of PGD steps that see a randomly shrunk and padded view (0 to 1; default 0), and
/// <c>ensembleStep</c>, what each PGD step follows against an ensemble (<c>mean</c>, the default, or one <c>drawn</c> member), and
/// <c>skipErosion</c>, ξ by which each PGD step scales the surrogates' residual skips at random (in [0, 1); default 0);
/// posts only, <c>hardening</c> (<c>epsilon</c>, <c>steps</c>): each surrogate briefly adversarially fine-tuned before protecting,
/// as the sidecar does by default (unset: its defaults; <c>steps</c> 0: none), and <c>level</c> (<c>rounds</c>, <c>pgdSteps</c>): the
/// strength level's rounds and PGD steps, as a sidecar configured with other ones protects.
/// <c>seed</c> (mem, em, posts) is the protection's own randomness, the spec's seed unless given: another seed repeats the
/// protection against the same data, names and hackers, which is how its spread is measured (a from-scratch mem surrogate's
/// initial weights stay the job's: they are the hacker's own start).
/// </summary>
public sealed record ProtectionSpec(ProtectionSource Source = ProtectionSource.Mem, string? Path = null, string? SidecarAddress = null, string? SidecarApiKey = null,
    double Epsilon = ProtectionOptions.DefaultEpsilon, [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] int? TriggerLength = null, int Rounds = ProtectionOptions.EvaluationRounds,
    int SurrogateSteps = ProtectionOptions.EvaluationSurrogateSteps, int PgdSteps = ProtectionOptions.DefaultPgdSteps, int TriggerRounds = ProtectionOptions.EvaluationTriggerRounds,
    int TopK = ProtectionOptions.EvaluationTopK, int BatchSize = ProtectionOptions.EvaluationBatchSize, double StopLoss = ProtectionOptions.DefaultStopLoss, string Vocabulary = "common-words", TransformSet RobustTo = TransformSet.None, ProtectionStrength? Strength = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] double? UserShare = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] bool? RestartSurrogate = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] IReadOnlyList<SurrogateSpec>? Members = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] int? ScratchSurrogateSteps = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] bool? StickyTriggers = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] Clip.Model.MatmulPrecision? Precision = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] double? InputDiversity = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] EnsembleStep? EnsembleStep = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] int? Seed = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] double? SkipErosion = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] HardeningSpec? Hardening = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] LevelSpec? Level = null)
{
    /// <summary>The share of ε on each person's pattern: as given, else the sidecar's for posts and 0 (the authors' loop) in-process.</summary>
    [JsonIgnore]
    public double UserShareOrDefault => UserShare ?? (Source == ProtectionSource.Posts ? Protection.UserNoise.DefaultShare : 0);

    /// <summary>As given, else the sidecar's for posts and the authors' 3 in-process (a sidecar source asks for its server's default).</summary>
    [JsonIgnore]
    public int TriggerLengthOrDefault => TriggerLength ?? (Source == ProtectionSource.Posts ? StrengthLevel.DefaultTriggerLength : ProtectionOptions.DefaultTriggerLength);

    /// <summary>As given, else the in-process default (on). Unset stays out of the saved spec, so job folders from before the field resume.</summary>
    [JsonIgnore]
    public bool RestartSurrogateOrDefault => RestartSurrogate ?? ProtectionOptions.Evaluation.RestartSurrogate;

    /// <summary>The hardening posts' surrogates get: as given (<c>steps</c> 0: none), else the sidecar's default; other sources none.</summary>
    public Protection.Robustness.AdversarialHardening? HardeningSettings(int seed) => Source != ProtectionSource.Posts ? null
        : Protection.Robustness.AdversarialHardening.FromSetting(Hardening?.Epsilon ?? Protection.Robustness.AdversarialHardening.DefaultEpsilon, Hardening?.Steps, seed);
}

/// <summary>
/// A transfer lever (posts): every surrogate is briefly adversarially fine-tuned on its own public recipe's pairs before
/// protecting (<see cref="Protection.Robustness.AdversarialHardening"/>), against an adversary of <paramref name="Epsilon"/>
/// (1/255 units) for <paramref name="Steps"/> steps.
/// </summary>
public sealed record HardeningSpec(double Epsilon = Protection.Robustness.AdversarialHardening.DefaultEpsilon, int Steps = Protection.Robustness.AdversarialHardening.DefaultSteps);

/// <summary>
/// Posts: the strength level's rounds (trigger search and PGD) and PGD steps per micro-batch, as a sidecar's
/// <c>Sidecar:Protection:&lt;Strength&gt;:Rounds</c> and <c>…:PgdSteps</c> set them for the spec's level; each unset keeps the level's.
/// </summary>
public sealed record LevelSpec([property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] int? Rounds = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] int? PgdSteps = null)
{
    public const int MaxRounds = 20, MaxPgdSteps = 200;
}

/// <summary>A release of the public recipe a protection is made against: its architecture (a preset) and the seed it was trained with.</summary>
public sealed record SurrogateSpec(string Preset = "tiny", int Seed = 0);

/// <summary>
/// The hacker. Fine-tuning starts from <see cref="PreTrained"/> or, without one, from a model
/// pre-trained here on synthetic captioned scenes (image–text alignment, never the job's data) and, with
/// <see cref="PreTrainFaces"/>, on public named photos of other people (identity folders; the sidecar's <c>Sidecar:Model:PublicFaces</c>).
/// With <see cref="RecipeSearch"/> the hacker picks learning rate and epochs themselves (<see cref="Evaluation.RecipeSearch"/>),
/// and <see cref="LearningRate"/> and <see cref="Epochs"/> are not used. <see cref="PreTrainSeed"/> is the release of the
/// public recipe the hacker downloads (unset: the spec's seed, the release the protection is made against), so a job can
/// measure protection against a release no protection member was made from.
/// </summary>
public sealed record HackerSpec(AttackMode Mode = AttackMode.FineTune, int Epochs = 10, double LearningRate = 1e-5, int BatchSize = 32,
    int WarmupSteps = 5, string? PreTrained = null, int PreTrainImages = 1000, int PreTrainEpochs = 20,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? PreTrainFaces = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] RecipeSearchSpec? RecipeSearch = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] int? PreTrainSeed = null);

/// <summary>
/// Extra arms beside clean and protected on the main architecture: other hacker architectures
/// (transfer), protected shares below 1 (poison fraction) and the hacker's countermeasures
/// (jpeg:Q, rescale:F, grayscale, blur:SIGMA, platform) applied to the protected images before training.
/// </summary>
/// <param name="Releases">Other releases (seeds) of the public model a fine-tuning hacker may download instead of theirs: each gets
/// the pre-trained, clean and protected arms (and the defences), so one report shows the protection against models it was not made on.</param>
public sealed record ArmsSpec(IReadOnlyList<string>? Architectures = null, IReadOnlyList<double>? Fractions = null,
    IReadOnlyList<string>? Countermeasures = null, bool CountermeasuresOnClean = false,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] IReadOnlyList<int>? Releases = null)
{
    public IReadOnlyList<string> TransferArchitectures => Architectures ?? [];
    public IReadOnlyList<int> HackerReleases => Releases ?? [];
    public IReadOnlyList<double> PoisonFractions => Fractions ?? [];
    public IReadOnlyList<string> HackerCountermeasures => Countermeasures ?? [];
}

/// <summary>One thing wrong with a spec: the JSON field at fault and what is wrong with it.</summary>
public sealed record SpecViolation(string Field, string Problem)
{
    public override string ToString() => $"{Field}: {Problem}";
}

/// <summary>A spec that cannot run, with every field at fault.</summary>
public sealed class SpecException(IReadOnlyList<SpecViolation> violations)
    : Exception("invalid attack spec: " + string.Join("; ", violations))
{
    public SpecException(string field, string problem) : this([new SpecViolation(field, problem)]) { }

    public IReadOnlyList<SpecViolation> Violations { get; } = violations;
}
