using System.CommandLine;
using Unlearnable.Protection;
using Unlearnable.Protection.Robustness;

namespace Unlearnable.Cli.Commands;

public enum TriggerScope { Image, Caption }

/// <summary>
/// The protection options, declared once for every command that protects. Each command adds the ones it
/// offers; their help shows the command's baseline, and a value left out stays unset, so
/// <see cref="ProtectionSettings.Resolve"/> takes it from the strength level or the baseline. Bad values are
/// refused at parse time.
/// </summary>
sealed class ProtectionOptionSet(ProtectionOptions baseline, ProtectionStrength? defaultStrength = null)
{
    public ProtectionOptions Baseline => baseline;

    public Option<ProtectionMethod?> Method { get; } = new Option<ProtectionMethod?>("--method") { Description = $"em, uap or mem (default: {baseline.Method.ToString().ToLowerInvariant()})" }.OneOf();

    public Option<ProtectionStrength?> Strength { get; } = new Option<ProtectionStrength?>("--strength")
    {
        Description = "low (ε 4, not made robust), medium (ε 8, robust to platform re-encoding and downscaling) or high (ε 12, 12 PGD steps, robust)" +
            (defaultStrength is { } s ? $" (default: {s.ToString().ToLowerInvariant()})" : ""),
        DefaultValueFactory = _ => defaultStrength,
    }.OneOf();

    public Option<double?> Epsilon { get; } = new Option<double?>("--epsilon") { Description = $"L∞ bound in 1/255 units (default: {Default(baseline.Epsilon * 255, defaultStrength)})" }
        .Must(v => v is null or (> 0 and <= 255), "--epsilon must be in (0, 255] (1/255 units)");

    public Option<double?> StepSize { get; } = new Option<double?>("--step-size") { Description = $"PGD step in 1/255 units (default: {baseline.StepSize * 255:G3})" }
        .Must(v => v is null or > 0, "--step-size must be positive (1/255 units)");

    public Option<int?> PgdSteps { get; } = new Option<int?>("--pgd-steps") { Description = $"PGD steps per batch and round (default: {Default(baseline.PgdSteps, defaultStrength)})" }
        .Must(v => v is null or >= 1, "--pgd-steps must be at least 1");

    public Option<TransformSet?> RobustTo { get; } = new Option<TransformSet?>("--robust-to")
    {
        Description = $"What the noise is optimised to survive: none (the authors' loop) or platform (JPEG 60-95, downscaling) (default: {Default(baseline.RobustTo, defaultStrength)})",
    }.OneOf();

    public Option<int?> Rounds { get; } = Positive("--rounds", "Outer rounds (surrogate steps, then trigger update and PGD over the data)", baseline.Rounds);
    public Option<int?> SurrogateSteps { get; } = new Option<int?>("--surrogate-steps") { Description = $"Surrogate AdamW steps per round (default: {baseline.SurrogateSteps})" }
        .Must(v => v is null or >= 0, "--surrogate-steps must be 0 or more");
    public Option<int?> TriggerLength { get; } = Positive("--trigger-length", "Trigger tokens k (MEM-k)", baseline.TriggerLength);
    public Option<int?> TriggerRounds { get; } = new Option<int?>("--trigger-rounds") { Description = $"Rounds in which triggers are updated (default: {baseline.TriggerRounds})" }
        .Must(v => v is null or >= 0, "--trigger-rounds must be 0 or more");
    public Option<int?> TopK { get; } = Positive("--top-k", "HotFlip candidates per position", baseline.TopK);
    public Option<int?> Beam { get; } = Positive("--beam", "Trigger search beam width", baseline.BeamWidth);
    public Option<int?> BatchSize { get; } = new Option<int?>("--batch-size") { Description = $"Images per protection batch (default: {baseline.BatchSize})" }
        .Must(v => v is null or >= 2, "--batch-size must be at least 2 (a contrastive batch)");
    public Option<double?> StopLoss { get; } = new Option<double?>("--stop-loss") { Description = $"Stop once a round's protected loss is below this (default: {baseline.StopLoss})" }
        .Must(v => v is null or >= 0, "--stop-loss must be 0 or more");

    public Option<TriggerScope?> TriggerScope { get; } = new Option<TriggerScope?>("--trigger-scope")
    {
        Description = "image: one trigger per image shared by its captions (default); caption: one per caption (the authors' per-pair triggers)",
    }.OneOf();

    public Option<bool?> RestartSurrogate { get; } = new("--restart-surrogate")
    {
        Description = $"Start each round's surrogate from the same initial weights, a young surrogate (default: {baseline.RestartSurrogate.ToString().ToLowerInvariant()}; false trains one surrogate on, the authors' loop)",
    };

    public Option<Clip.Model.MatmulPrecision?> Precision { get; } = SharedOptions.Precision();

    public Option<double?> InputDiversity { get; } = new Option<double?>("--input-diversity")
    {
        Description = $"Share of PGD steps whose surrogates see a randomly shrunk and padded view, a transfer lever (default: {baseline.InputDiversity:G3}, none)",
    }.Must(v => v is null or (>= 0 and <= 1), "--input-diversity must be in [0, 1] (a share of PGD steps)");

    public Option<double?> SkipErosion { get; } = new Option<double?>("--skip-erosion")
    {
        Description = $"ξ: each PGD step scales the surrogates' residual skips by a random λ in [1 − ξ, 1 + ξ], a transfer lever (default: {baseline.SkipErosion:G3}, none)",
    }.Must(v => v is null or (>= 0 and < 1), "--skip-erosion must be in [0, 1)");

    public Option<EnsembleStep?> EnsembleStep { get; } = new Option<EnsembleStep?>("--ensemble-step")
    {
        Description = $"Against several --surrogate: each PGD step follows their mean loss, or one member drawn per step (default: {baseline.EnsembleStep.ToString().ToLowerInvariant()})",
    }.OneOf();

    /// <summary>The protection options this set declares, in help order.</summary>
    public IEnumerable<Option> All =>
        [Method, Strength, Epsilon, StepSize, PgdSteps, RobustTo, Rounds, SurrogateSteps, TriggerLength, TriggerRounds, TopK, Beam, BatchSize, StopLoss, TriggerScope, RestartSurrogate, Precision, InputDiversity, SkipErosion, EnsembleStep];

    /// <summary>What the command line chose; options the command does not offer, or that were left out, stay unset.</summary>
    public ProtectionSettings Read(ParseResult result, int seed) => new()
    {
        Method = Get(result, Method), Strength = Get(result, Strength), Epsilon = Get(result, Epsilon), StepSize = Get(result, StepSize),
        PgdSteps = Get(result, PgdSteps), RobustTo = Get(result, RobustTo), Rounds = Get(result, Rounds), SurrogateSteps = Get(result, SurrogateSteps),
        TriggerLength = Get(result, TriggerLength), TriggerRounds = Get(result, TriggerRounds), TopK = Get(result, TopK), BeamWidth = Get(result, Beam),
        BatchSize = Get(result, BatchSize), StopLoss = Get(result, StopLoss), TriggerPerImage = Get(result, TriggerScope) is { } scope ? scope == Commands.TriggerScope.Image : null,
        RestartSurrogate = Get(result, RestartSurrogate), Precision = Get(result, Precision),
        InputDiversity = Get(result, InputDiversity), SkipErosion = Get(result, SkipErosion), EnsembleStep = Get(result, EnsembleStep), Seed = seed,
    };

    /// <summary>The options the command line chose, on this set's baseline.</summary>
    public ProtectionOptions Resolve(ParseResult result, int seed) => Read(result, seed).Resolve(baseline);

    static T? Get<T>(ParseResult result, Option<T?> option) where T : struct => result.GetResult(option) is null ? null : result.GetValue(option);

    static Option<int?> Positive(string name, string description, int fallback) =>
        new Option<int?>(name) { Description = $"{description} (default: {fallback})" }.Must(v => v is null or >= 1, $"{name} must be at least 1");

    static string Default<T>(T value, ProtectionStrength? strength) => strength is null ? $"{value}".ToLowerInvariant() : "the strength's";
}
