using Unlearnable.Protection.Robustness;

namespace Unlearnable.Protection;

/// <summary>How hard to protect, as users of Fawkes and Glaze ask for it: less visible and faster, or stronger.</summary>
public enum ProtectionStrength { Low, Medium, High }

/// <summary>
/// What a strength stands for: the noise bound (1/255 units), trigger-and-PGD rounds and PGD steps
/// per batch of posts, and what the noise is optimised to survive. Low is the authors' loop at half
/// the bound; medium and high are made robust to the re-encoding and downscaling platforms do.
/// </summary>
public sealed record StrengthLevel(double Epsilon, int Rounds, int PgdSteps, TransformSet RobustTo)
{
    /// <summary>The sidecar's PGD step (1/255 units) and HotFlip candidates per position, unless configured otherwise.</summary>
    public const double DefaultStepSize = 1;
    public const int DefaultTopK = 16;

    /// <summary>The trigger words a post gets when it names no length (the sidecar's, posts specs', the demo's): eight kept more
    /// than five in 14 of 16 measured means (the release made on and unseen ones, both directions, two hackers, two face sets),
    /// and five more than three (docs/results.md); each word is one more HotFlip search a post.</summary>
    public const int DefaultTriggerLength = 8;

    /// <summary>
    /// What protecting posts at this level means to the batch protector (the sidecar's micro-batches
    /// and the in-process posts path alike): the bound <paramref name="epsilon"/> (1/255 units; a post
    /// may ask for another than the level's), MEM with a trigger of <paramref name="triggerLength"/>
    /// tokens or EM without one (0), the level's PGD steps and robustness, the surrogates' products in <paramref name="precision"/>,
    /// and the transfer levers (<see cref="ProtectionOptions.InputDiversity"/>, <see cref="ProtectionOptions.EnsembleStep"/>, <see cref="ProtectionOptions.SkipErosion"/>).
    /// </summary>
    public ProtectionOptions PostOptions(double epsilon, int triggerLength, int seed, double userShare = 0,
        double stepSize = DefaultStepSize, int topK = DefaultTopK, Clip.Model.MatmulPrecision precision = Clip.Model.MatmulPrecision.Float32,
        double inputDiversity = 0, EnsembleStep ensembleStep = EnsembleStep.Mean, double skipErosion = 0) => new ProtectionSettings
    {
        Method = triggerLength > 0 ? ProtectionMethod.Mem : ProtectionMethod.Em, TriggerLength = Math.Max(1, triggerLength),
        Epsilon = epsilon, StepSize = Math.Min(stepSize, epsilon), PgdSteps = PgdSteps, RobustTo = RobustTo,
        TopK = topK, UserShare = userShare, Precision = precision, InputDiversity = inputDiversity, EnsembleStep = ensembleStep, SkipErosion = skipErosion, Seed = seed,
    }.Resolve(ProtectionOptions.FromScratch);

    /// <summary>The authors' step for a batch of posts: one round of 8 PGD steps at ε 8, no transformations (what <c>bench mem</c> times by default).</summary>
    public static StrengthLevel Authors { get; } = new(ProtectionOptions.DefaultEpsilon, 1, ProtectionOptions.DefaultPgdSteps, TransformSet.None);

    public static StrengthLevel Default(ProtectionStrength strength) => strength switch
    {
        ProtectionStrength.Low => new(4, 1, 8, TransformSet.None),
        ProtectionStrength.High => new(12, 3, 12, TransformSet.Platform),
        _ => new(8, 2, 8, TransformSet.Platform),
    };
}
