using Unlearnable.Protection.Robustness;

namespace Unlearnable.Protection;

/// <summary>
/// Protection as a person chooses it: on a command line, in a job spec or in the sidecar's configuration,
/// with ε and the PGD step in 1/255 units and anything unset left to a baseline (<see cref="ProtectionOptions.FromScratch"/>
/// or <see cref="ProtectionOptions.Evaluation"/>) or, for ε, PGD steps and robustness, to the strength level.
/// <see cref="Resolve"/> is the one place protection options are made from choices.
/// </summary>
public sealed record ProtectionSettings
{
    public ProtectionMethod? Method { get; init; }
    public ProtectionStrength? Strength { get; init; }
    /// <summary>L∞ bound, 1/255 units.</summary>
    public double? Epsilon { get; init; }
    /// <summary>PGD step, 1/255 units.</summary>
    public double? StepSize { get; init; }
    public int? PgdSteps { get; init; }
    public TransformSet? RobustTo { get; init; }
    public int? Rounds { get; init; }
    public int? SurrogateSteps { get; init; }
    public double? SurrogateLearningRate { get; init; }
    public int? TriggerLength { get; init; }
    public int? TriggerRounds { get; init; }
    public int? TopK { get; init; }
    public int? BeamWidth { get; init; }
    public int? BatchSize { get; init; }
    public double? StopLoss { get; init; }
    public bool? TriggerPerImage { get; init; }
    public bool? RestartSurrogate { get; init; }
    public double? UserShare { get; init; }
    public Clip.Model.MatmulPrecision? Precision { get; init; }
    public double? InputDiversity { get; init; }
    public double? SkipErosion { get; init; }
    public EnsembleStep? EnsembleStep { get; init; }
    public int Seed { get; init; }

    /// <summary>
    /// The options these choices mean: each setting as chosen, else the strength level's (ε, PGD steps,
    /// robustness; only where a strength was chosen), else the baseline's.
    /// </summary>
    public ProtectionOptions Resolve(ProtectionOptions baseline)
    {
        var level = Strength is { } strength ? StrengthLevel.Default(strength) : null;
        return new ProtectionOptions
        {
            Method = Method ?? baseline.Method,
            Epsilon = Epsilon is { } epsilon ? epsilon / 255 : level is null ? baseline.Epsilon : level.Epsilon / 255,
            StepSize = StepSize is { } step ? step / 255 : baseline.StepSize,
            PgdSteps = PgdSteps ?? level?.PgdSteps ?? baseline.PgdSteps,
            RobustTo = RobustTo ?? level?.RobustTo ?? baseline.RobustTo,
            Rounds = Rounds ?? baseline.Rounds,
            SurrogateSteps = SurrogateSteps ?? baseline.SurrogateSteps,
            SurrogateLearningRate = SurrogateLearningRate ?? baseline.SurrogateLearningRate,
            SurrogateWeightDecay = baseline.SurrogateWeightDecay,
            TriggerLength = TriggerLength ?? baseline.TriggerLength,
            TriggerRounds = TriggerRounds ?? baseline.TriggerRounds,
            TopK = TopK ?? baseline.TopK,
            BeamWidth = BeamWidth ?? baseline.BeamWidth,
            BatchSize = BatchSize ?? baseline.BatchSize,
            StopLoss = StopLoss ?? baseline.StopLoss,
            TriggerPerImage = TriggerPerImage ?? baseline.TriggerPerImage,
            RestartSurrogate = RestartSurrogate ?? baseline.RestartSurrogate,
            UserShare = UserShare ?? baseline.UserShare,
            Precision = Precision ?? baseline.Precision,
            InputDiversity = InputDiversity ?? baseline.InputDiversity,
            SkipErosion = SkipErosion ?? baseline.SkipErosion,
            EnsembleStep = EnsembleStep ?? baseline.EnsembleStep,
            Seed = Seed,
        };
    }
}
