using System.Text.Json.Serialization;
using Unlearnable.Training;

namespace Unlearnable.Evaluation;

/// <summary>A model's clean-test retrieval after one epoch (epoch 0: before any training).</summary>
public sealed record EpochScores(int Epoch, double Loss, [property: JsonPropertyName("i2t")] RetrievalScores I2T, [property: JsonPropertyName("t2i")] RetrievalScores T2I);

/// <summary>One arm's outcome: its retrieval per epoch and at the end.</summary>
public sealed record ArmResult(string Name, string Kind, string Architecture, double Fraction, string? Countermeasure,
    IReadOnlyList<EpochScores> Epochs, [property: JsonPropertyName("i2t")] RetrievalScores I2T, [property: JsonPropertyName("t2i")] RetrievalScores T2I, double Seconds);

/// <summary>report.json: the spec, the data, the random-ranking baseline, the protection and every arm.</summary>
public sealed record AttackReport(string Name, AttackSpec Spec, string Data, int TrainImages, int TestImages,
    [property: JsonPropertyName("randomI2t")] RetrievalScores RandomI2T, [property: JsonPropertyName("randomT2i")] RetrievalScores RandomT2I, ProtectionSummary? Protection, IReadOnlyList<ArmResult> Arms, double Seconds)
{
    public ArmResult? Arm(string name) => Arms.FirstOrDefault(a => a.Name == name);

    /// <summary>
    /// How much of the protection an arm keeps, by image→text Hit@10: 100 % when it scores like the
    /// fully protected arm, 0 % when it scores like the clean one (null when the two do not differ).
    /// </summary>
    public double? ProtectionKept(ArmResult arm)
    {
        if (Arm(ArmKinds.Clean) is not { } clean || Arm(ArmKinds.Protected) is not { } full) return null;
        double span = clean.I2T.Hit10 - full.I2T.Hit10;
        return Math.Abs(span) < 1e-9 ? null : 100 * (clean.I2T.Hit10 - arm.I2T.Hit10) / span;
    }
}
