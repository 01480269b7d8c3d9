using Unlearnable.Protection.Robustness;

namespace Unlearnable.Protection;

public enum ProtectionMethod { Em, Uap, Mem }

/// <summary>What each PGD step follows against an ensemble: the members' mean loss (every member's gradient), or one member drawn per step.</summary>
public enum EnsembleStep { Mean, Drawn }

/// <summary>
/// Knobs of the protection loops, defaulting to the authors' from-scratch values: ε = 8/255,
/// α = 1/255, 8 PGD steps a batch, 20 rounds of 200 surrogate steps (AdamW lr 1e-4, wd 0.2),
/// triggers of 3 tokens updated in the first 5 rounds with HotFlip top-16, beam 1, batch 128.
/// </summary>
public sealed record ProtectionOptions
{
    // The defaults that job specs (records, which can only default to constants) share with these options.
    public const double DefaultEpsilon = 8, DefaultStopLoss = 0.01;
    public const int DefaultTriggerLength = 3, DefaultPgdSteps = 8;
    public const int EvaluationRounds = 10, EvaluationSurrogateSteps = 50, EvaluationTriggerRounds = 2, EvaluationTopK = 6, EvaluationBatchSize = 32;

    /// <summary>The authors' from-scratch loop: what <c>protect</c> and <c>experiment table1</c> run unless told otherwise.</summary>
    public static ProtectionOptions FromScratch { get; } = new();

    /// <summary>
    /// The evaluation jobs' lighter in-process loop (job specs, <c>experiment faces</c>): 10 rounds of 50 surrogate steps,
    /// triggers updated in the first 2 rounds with top-6, batch 32, so a CPU finishes a job in minutes.
    /// </summary>
    public static ProtectionOptions Evaluation { get; } = new()
    {
        Rounds = EvaluationRounds, SurrogateSteps = EvaluationSurrogateSteps, TriggerRounds = EvaluationTriggerRounds,
        TopK = EvaluationTopK, BatchSize = EvaluationBatchSize,
    };

    public ProtectionMethod Method { get; init; } = ProtectionMethod.Mem;
    public double Epsilon { get; init; } = DefaultEpsilon / 255;
    public double StepSize { get; init; } = 1.0 / 255;
    public int PgdSteps { get; init; } = DefaultPgdSteps;
    public int Rounds { get; init; } = 20;
    public int SurrogateSteps { get; init; } = 200;
    public double SurrogateLearningRate { get; init; } = 1e-4;
    public double SurrogateWeightDecay { get; init; } = 0.2;
    public int BatchSize { get; init; } = 128;
    public int TriggerLength { get; init; } = DefaultTriggerLength;
    public int TriggerRounds { get; init; } = 5;
    public int TopK { get; init; } = 16;
    public int BeamWidth { get; init; } = 1;
    public double StopLoss { get; init; } = DefaultStopLoss;
    public int Seed { get; init; }

    /// <summary>
    /// One trigger per image, shared by its captions (the default), or one per caption (the
    /// authors' per-pair triggers). A published post has one image and one caption, so the two
    /// agree there. On benchmark sets with five captions per image, per-caption triggers split
    /// the single δ between five triggers and protected almost nothing here (hacker MedR 6 against
    /// 41 per image on the same run), so per-image is the default.
    /// </summary>
    public bool TriggerPerImage { get; init; } = true;

    /// <summary>
    /// Start every round's surrogate from the same initial weights instead of training one
    /// surrogate on throughout. A hacker starts from a fresh model, and what leaks is what it learns
    /// before the shortcut: a young surrogate makes PGD favour noise that a fresh model picks up
    /// within a few steps; a fine-tuning hacker starts from the pre-trained model, which is then the initial
    /// surrogate. On by default: it protected better from scratch (Table 1, docs/results.md) and against fine-tuning on
    /// real faces (name→face kept 87 → 91 %). Off is the authors' loop (one surrogate trained on).
    /// </summary>
    public bool RestartSurrogate { get; init; } = true;

    /// <summary>
    /// Share of ε spent on a pattern all of one owner's photos carry (<see cref="UserNoise"/>), where the
    /// data says who posted each photo; rounded down to whole 1/255 steps. 0 (the authors' loop) = sample-wise noise only.
    /// </summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingDefault)]   // runs from before it existed resume
    public double UserShare { get; init; }

    /// <summary>The user pattern's bound in pixel units: <see cref="UserShare"/> of ε in whole 1/255 steps (published noise has no finer ones).</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public double UserBound => Math.Floor(UserShare * Epsilon * 255 + 1e-6) / 255;

    /// <summary>
    /// The surrogates' matrix products during each MEM round (PGD and trigger search; surrogate training stays float32).
    /// Float32 is the authors' arithmetic; Bfloat16 protects 2–3× faster at real sizes on CPUs with AVX-512 BF16, with
    /// noise that differs in rounding (docs/performance.md).
    /// </summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingDefault)]   // runs from before it existed resume
    public Clip.Model.MatmulPrecision Precision { get; init; }

    /// <summary>
    /// Against several surrogates: each PGD step follows their mean loss (K gradients a step), or one member drawn per step
    /// (one gradient a step, the members taking turns at random). The trigger search always scores the mean.
    /// </summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingDefault)]   // runs from before it existed resume
    public EnsembleStep EnsembleStep { get; init; }

    /// <summary>The share of PGD steps whose surrogates see a randomly shrunk and padded view (<see cref="Robustness.InputDiversity"/>); 0 = none, the authors' loop.</summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingDefault)]   // runs from before it existed resume
    public double InputDiversity { get; init; }

    /// <summary>ξ of skip-connection erosion (<see cref="Clip.Model.SkipErosion"/>): each PGD step sees the surrogates with every residual skip scaled by a drawn λ in [1 − ξ, 1 + ξ]; 0 = none.</summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingDefault)]   // runs from before it existed resume
    public double SkipErosion { get; init; }

    /// <summary>What PGD optimises the noise to survive; None is the authors' loop.</summary>
    public TransformSet RobustTo { get; init; } = TransformSet.None;

    public bool UsesTrigger => Method == ProtectionMethod.Mem;

    /// <summary>Refuses options that cannot work, saying which and why, before anything runs.</summary>
    public void Validate(int contextLength)
    {
        if (!(Epsilon > 0 && Epsilon <= 1)) throw new ArgumentOutOfRangeException(nameof(Epsilon), Epsilon, "ε must be in (0, 1] (pixel range units; 8/255 by default)");
        if (!(StepSize > 0 && StepSize <= Epsilon)) throw new ArgumentOutOfRangeException(nameof(StepSize), StepSize, "the PGD step must be in (0, ε]");
        if (PgdSteps < 1) throw new ArgumentOutOfRangeException(nameof(PgdSteps), PgdSteps, "PGD steps must be at least 1");
        if (Rounds < 1) throw new ArgumentOutOfRangeException(nameof(Rounds), Rounds, "rounds must be at least 1");
        if (SurrogateSteps < 0) throw new ArgumentOutOfRangeException(nameof(SurrogateSteps), SurrogateSteps, "surrogate steps must be ≥ 0");
        if (BatchSize < 2) throw new ArgumentOutOfRangeException(nameof(BatchSize), BatchSize, "a contrastive batch needs at least 2 pairs");
        if (TopK < 1) throw new ArgumentOutOfRangeException(nameof(TopK), TopK, "top-k must be at least 1");
        if (BeamWidth < 1) throw new ArgumentOutOfRangeException(nameof(BeamWidth), BeamWidth, "beam width must be at least 1");
        if (!(UserShare is >= 0 and < 1)) throw new ArgumentOutOfRangeException(nameof(UserShare), UserShare, "the user share of ε must be in [0, 1) (0 = sample-wise noise only)");
        if (!(InputDiversity is >= 0 and <= 1)) throw new ArgumentOutOfRangeException(nameof(InputDiversity), InputDiversity, "the input-diversity share of PGD steps must be in [0, 1] (0 = none)");
        if (!(SkipErosion is >= 0 and < 1)) throw new ArgumentOutOfRangeException(nameof(SkipErosion), SkipErosion, "skip erosion ξ must be in [0, 1) (0 = none)");
        if (!Enum.IsDefined(EnsembleStep)) throw new ArgumentOutOfRangeException(nameof(EnsembleStep), EnsembleStep, "the ensemble step is mean or drawn");
        if (StopLoss < 0) throw new ArgumentOutOfRangeException(nameof(StopLoss), StopLoss, "the stop loss must be ≥ 0");
        if (UsesTrigger)
        {
            if (TriggerLength < 1) throw new ArgumentOutOfRangeException(nameof(TriggerLength), TriggerLength, "MEM needs a trigger of at least 1 token");
            if (TriggerLength > contextLength - 3)
                throw new ArgumentOutOfRangeException(nameof(TriggerLength), TriggerLength,
                    $"a {TriggerLength}-token trigger does not fit the model's {contextLength}-token context with SOT, EOT and a caption token");
        }
    }
}
