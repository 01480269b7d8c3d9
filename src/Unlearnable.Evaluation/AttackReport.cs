using System.Text.Json.Serialization;
using Unlearnable.Training;

namespace Unlearnable.Evaluation;

/// <summary>A model's clean-test retrieval after one epoch (epoch 0: before any training).</summary>
public sealed record EpochScores(int Epoch, double Loss, [property: JsonPropertyName("i2t")] RetrievalScores I2T, [property: JsonPropertyName("t2i")] RetrievalScores T2I);

/// <summary>
/// One arm's outcome: its retrieval per epoch and at the end, and what the hacker's defence did to the training set
/// (<paramref name="TrainPairs"/> learned from, pairs the filter dropped, captions the clean-up rewrote).
/// </summary>
public sealed record ArmResult(string Name, string Kind, string Architecture, double Fraction, string? Countermeasure,
    IReadOnlyList<EpochScores> Epochs, [property: JsonPropertyName("i2t")] RetrievalScores I2T, [property: JsonPropertyName("t2i")] RetrievalScores T2I, double Seconds,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] int? TrainPairs = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] int? DroppedPairs = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] int? RewrittenCaptions = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] int? Release = null);

/// <summary>Which way retrieval is scored: a face's name among all captions (image→text) or a name's face among all images (text→image).</summary>
public enum Direction { ImageToText, TextToImage }

/// <summary>report.json: the spec, the data, the random-ranking baseline, the protection, every arm and what protection each arm kept.</summary>
public sealed record AttackReport(string Name, AttackSpec Spec, string Data, int TrainImages, int TestImages,
    [property: JsonPropertyName("randomI2t")] RetrievalScores RandomI2T, [property: JsonPropertyName("randomT2i")] RetrievalScores RandomT2I, ProtectionSummary? Protection, IReadOnlyList<ArmResult> Arms, double Seconds,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] RecipeChoice? Recipe = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] IReadOnlyDictionary<string, RecipeChoice>? TransferRecipes = null)
{
    /// <summary>The learning rate and epochs every arm trained with: the search's choice, or the spec's.</summary>
    public (double LearningRate, int Epochs) HackerRecipe => Recipe is { } r ? (r.LearningRate, r.Epochs) : (Spec.Attack.LearningRate, Spec.Attack.Epochs);

    public ArmResult? Arm(string name) => Arms.FirstOrDefault(a => a.Name == name);

    /// <summary>
    /// How much of what the hacker would learn an arm's protection takes away, by Hit@10 in one direction: the share of
    /// the clean hacker's gain over its start model (the pre-trained model when fine-tuning, the fresh one from scratch)
    /// that the arm does not reach. 100 % = it learned nothing, 0 % = as much as from clean photos. Null when the clean
    /// hacker gained less than one held-out photo's worth (there was nothing to keep, and dividing by a tiny or negative gain
    /// would give meaningless shares). An arm is measured against the clean hacker of its own architecture and release.
    /// </summary>
    public double? ProtectionKept(ArmResult arm, Direction direction = Direction.ImageToText)
    {
        if (Reference(ArmKinds.Clean, arm.Architecture, arm.Release) is not { } clean || StartHit10(direction, arm.Architecture, arm.Release) is not { } start) return null;
        double gain = Hit10(clean, direction) - start;
        return gain < MinGain ? null : 100 * (Hit10(clean, direction) - Hit10(arm, direction)) / gain;
    }

    /// <summary>One held-out photo's worth of Hit@10, in points.</summary>
    double MinGain => 100.0 / Math.Max(1, TestImages);

    /// <summary>The start model's Hit@10: the pre-trained arm's, else the clean arm's before its first epoch.</summary>
    public double? StartHit10(Direction direction, string architecture, int? release = null) =>
        Reference(ArmKinds.PreTrained, architecture, release) is { } preTrained ? Hit10(preTrained, direction)
        : Reference(ArmKinds.Clean, architecture, release)?.Epochs.FirstOrDefault(e => e.Epoch == 0) is { } before ? (direction == Direction.ImageToText ? before.I2T.Hit10 : before.T2I.Hit10)
        : null;

    /// <summary>An architecture's pre-trained or clean arm (of the hacker's own release, or another one): nothing protected, no defence.</summary>
    public ArmResult? Reference(string kind, string architecture, int? release = null) =>
        Arms.FirstOrDefault(a => a.Kind == kind && a.Architecture.Equals(architecture, StringComparison.OrdinalIgnoreCase) && a.Release == release
            && a.Fraction == 0 && a.Countermeasure is null);

    public static double Hit10(ArmResult arm, Direction direction) => direction == Direction.ImageToText ? arm.I2T.Hit10 : arm.T2I.Hit10;

    /// <summary>Kept per protected arm of the main architecture and the worst case over the hacker's defences (written into report.json).</summary>
    public ProtectionVerdict? Verdict => ProtectionVerdict.Of(this);
}
