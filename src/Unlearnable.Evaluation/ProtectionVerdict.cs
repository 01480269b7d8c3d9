namespace Unlearnable.Evaluation;

/// <summary>What one protected arm kept, in each direction (percent of the clean hacker's gain taken away; null where the clean hacker gained nothing).</summary>
public sealed record ArmKept(string Arm, string? Defence, double? ImageToText, double? TextToImage);

/// <summary>The lowest kept share in one direction over the protected arm as sent and every defence, and the arm that gave it.</summary>
public sealed record WorstKept(double? Kept, string? Arm);

/// <summary>
/// The headline of a report: how much protection survives a hacker at their best. The clean hacker's gain over the
/// pre-trained model says whether there was anything to protect (a hacker who learns nothing from clean photos makes
/// every "kept" figure meaningless); the worst case is the minimum over what the hacker does to the data and over the
/// releases of the public model they may fine-tune (<c>arms.releases</c>), each against its own clean hacker.
/// </summary>
public sealed record ProtectionVerdict(IReadOnlyList<ArmKept> Arms, WorstKept WorstImageToText, WorstKept WorstTextToImage,
    double? CleanGainImageToText, double? CleanGainTextToImage)
{
    /// <summary>Null when the report has no clean and protected arms to compare.</summary>
    public static ProtectionVerdict? Of(AttackReport report)
    {
        if (report.Reference(ArmKinds.Clean, report.Spec.Preset) is not { } clean || report.Arm(ArmKinds.Protected) is null) return null;
        double? Gain(Direction d) => report.StartHit10(d, report.Spec.Preset) is { } start ? AttackReport.Hit10(clean, d) - start : null;
        var arms = report.Arms.Where(a => a.Kind == ArmKinds.Protected && a.Architecture == report.Spec.Preset && a.Fraction >= 1)
            .Select(a => new ArmKept(a.Name, a.Countermeasure, report.ProtectionKept(a, Direction.ImageToText), report.ProtectionKept(a, Direction.TextToImage)))
            .ToList();
        WorstKept Worst(Func<ArmKept, double?> kept) =>
            arms.Where(a => kept(a) is not null).OrderBy(a => kept(a)).Select(a => new WorstKept(kept(a), a.Arm)).FirstOrDefault() ?? new WorstKept(null, null);
        return new ProtectionVerdict(arms, Worst(a => a.ImageToText), Worst(a => a.TextToImage), Gain(Direction.ImageToText), Gain(Direction.TextToImage));
    }
}
