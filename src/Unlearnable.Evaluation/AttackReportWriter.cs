using System.Globalization;
using System.Text;
using System.Text.Json;
using Unlearnable.Charts;
using Unlearnable.Training;

namespace Unlearnable.Evaluation;

/// <summary>report.json, report.md (paper-style tables per arm group) and the loss and retrieval curves of every arm.</summary>
public static class AttackReportWriter
{
    public static void Write(string outDir, AttackReport report)
    {
        File.WriteAllText(Path.Combine(outDir, "report.json"), JsonSerializer.Serialize(report, AttackSpec.Json));
        File.WriteAllText(Path.Combine(outDir, "report.md"), Markdown(report));
        var trained = report.Arms.Where(a => a.Epochs.Count > 1).ToList();
        Series Curve(ArmResult a, Func<EpochScores, double> y, bool skipZero = false)
        {
            var points = a.Epochs.Where(e => !skipZero || e.Epoch > 0).ToList();
            return new Series(a.Name, points.Select(e => (double)e.Epoch).ToList(), points.Select(y).ToList(), Dashed: a.Kind == ArmKinds.Clean);
        }
        Plots.Lines(Path.Combine(outDir, "loss.png"), "Hacker training loss", "epoch", "contrastive loss", trained.Select(a => Curve(a, e => e.Loss, skipZero: true)));
        Plots.Lines(Path.Combine(outDir, "i2t-hit10.png"), "Image → text Hit@10 on clean held-out data", "epoch", "Hit@10 (%)",
            trained.Select(a => Curve(a, e => e.I2T.Hit10)).Append(Flat("random ranking", report.RandomI2T.Hit10, trained)));
        // One picture per arm group as well, each with the clean and protected arms for reference.
        var reference = trained.Where(a => a.Architecture == report.Spec.Preset && a.Release is null && a.Countermeasure is null && a.Fraction is 0 or 1).ToList();
        foreach (var (file, title, members) in new[]
        {
            ("i2t-hit10-transfer.png", "transfer", trained.Where(a => a.Architecture != report.Spec.Preset && a.Release is null).ToList()),
            ("i2t-hit10-fraction.png", "poison fraction", trained.Where(a => a.Fraction is > 0 and < 1).ToList()),
            ("i2t-hit10-robustness.png", "robustness", trained.Where(a => a.Countermeasure is not null && a.Release is null).ToList()),
            ("i2t-hit10-releases.png", "other releases", trained.Where(a => a.Release is not null && a.Countermeasure is null).ToList()),
        })
        {
            if (members.Count == 0) continue;
            Plots.Lines(Path.Combine(outDir, file), $"Image → text Hit@10, {title} arms", "epoch", "Hit@10 (%)",
                reference.Concat(members).Select(a => Curve(a, e => e.I2T.Hit10)).Append(Flat("random ranking", report.RandomI2T.Hit10, trained)));
        }
        if (report.Verdict is { Arms.Count: > 0 } verdict)
            Plots.GroupedBars(Path.Combine(outDir, "kept.png"), "Protection kept per arm (100 % = the hacker learned nothing, 0 % = as much as from clean photos)", "kept (%)",
                verdict.Arms.Select(a => a.Arm).ToList(),
                [("face → name (image→text)", verdict.Arms.Select(a => a.ImageToText).ToList()), ("name → face (text→image)", verdict.Arms.Select(a => a.TextToImage).ToList())]);
        Plots.Lines(Path.Combine(outDir, "i2t-medr.png"), "Image → text median rank on clean held-out data", "epoch", "MedR (lower = hacker learns)",
            trained.Select(a => Curve(a, e => e.I2T.MedR)).Append(Flat("random ranking", report.RandomI2T.MedR, trained)));
        Plots.Lines(Path.Combine(outDir, "t2i-medr.png"), "Text → image median rank on clean held-out data", "epoch", "MedR (lower = hacker learns)",
            trained.Select(a => Curve(a, e => e.T2I.MedR)).Append(Flat("random ranking", report.RandomT2I.MedR, trained)));
    }

    static Series Flat(string name, double value, IReadOnlyList<ArmResult> arms)
    {
        double last = Math.Max(1, arms.Count == 0 ? 1 : arms.Max(a => a.Epochs[^1].Epoch));
        return new Series(name, [0, last], [value, value], Dashed: true);
    }

    public static string Markdown(AttackReport report)
    {
        var md = new StringBuilder();
        void Line(string text) => md.AppendLine(text);
        Line($"# {report.Name}");
        Line("");
        var (lr, epochs) = report.HackerRecipe;
        Line(Invariant($"Data: {report.Data}. Attack: {SpecNames.Of(report.Spec.Attack.Mode)}, {epochs} epochs, lr {lr:G3}, architecture {report.Spec.Preset}. Seed {report.Spec.Seed}. Took {report.Seconds / 60:F1} min."));
        if (report.Recipe is { } recipe)
            Line(Invariant($"The hacker chose this recipe on clean data, validated on {recipe.ValidationPhotos} training photos (one per person) after training on the other {recipe.TrainPhotos}; the test photos were not used. ") +
                 "Grid (validation Hit@10, mean of both directions, best epoch): " +
                 Trials(recipe) + ".");
        foreach (var (architecture, other) in report.TransferRecipes ?? new Dictionary<string, RecipeChoice>())
            Line(Invariant($"The {architecture} hacker chose theirs the same way: lr {other.LearningRate:G3}, {other.Epochs} epochs (") +
                 Trials(other) + ").");
        if (report.Protection is { } p)
            Line(Invariant($"Protection: {p.Source} on {p.Images} training images, max L∞ {p.MaxLInfinity}/255, mean PSNR {p.MeanPsnr:F1} dB, mean SSIM {p.MeanSsim:F3}, {p.Seconds:F0} s") +
                (p.DictionaryShare is { } share ? Invariant($", {share * 100:F0} % of trigger words are dictionary words (e.g. {string.Join("; ", p.ExampleTriggers.Take(3).Select(t => $"\"{t}\""))})") : "") +
                (p.Posting is { } posting ? "; " + posting : "") +
                (report.Spec.Protection.Precision == Clip.Model.MatmulPrecision.Bfloat16 ? "; the surrogates' products in bfloat16" : "") + ".");
        Line("");
        Line("Scores are on the clean held-out split after the last epoch; lower MedR and higher Hit@k mean the hacker learned more. " +
             "\"Kept\" is the share of the clean hacker's Hit@10 gain over its start model that an arm does not reach, in each direction (100 % = the hacker learned nothing, 0 % = as much as from clean photos).");
        if (report.Verdict is { } verdict) Headline(md, verdict);

        var own = report.Arms.Where(a => a.Release is null).ToList();
        Table(md, "Same architecture", report, own.Where(a => a.Architecture == report.Spec.Preset && a.Countermeasure is null && a.Fraction is 0 or 1), kept: true);
        Table(md, "Transfer to other architectures: hackers of another architecture than the spec's preset (the protection may have been made against it too: see how it was posted, above)", report, own.Where(a => a.Architecture != report.Spec.Preset), kept: true);
        Table(md, "Poison fraction: only a share of the training pairs protected", report, own.Where(a => a.Fraction is > 0 and < 1), kept: true);
        Table(md, "The hacker's defences: what they do to the protected training set (washes, augmentation, caption clean-up, filtering)", report, own.Where(a => a.Countermeasure is not null), kept: true);
        Table(md, "Other releases of the public model: the hacker fine-tunes one the protection was not made from (each against its own clean hacker)", report,
            report.Arms.Where(a => a.Release is not null), kept: true);
        Line("");
        Line("Plots: `kept.png` (kept per arm, both directions), `loss.png`, `i2t-hit10.png` (and per group: `i2t-hit10-transfer.png`, `-fraction.png`, `-robustness.png`, `-releases.png`), `i2t-medr.png`, `t2i-medr.png`, `examples.png` (clean vs protected training pairs), `tsne-clean.png` and `tsne-protected.png` (held-out image and caption features of the clean and protected hackers).");
        return md.ToString();
    }

    static void Table(StringBuilder md, string title, AttackReport report, IEnumerable<ArmResult> arms, bool kept)
    {
        var rows = arms.ToList();
        if (rows.Count == 0) return;
        md.AppendLine();
        md.AppendLine($"## {title}");
        md.AppendLine();
        md.AppendLine("| model | image→text Hit@1 | Hit@5 | Hit@10 | MedR | text→image Hit@1 | Hit@5 | Hit@10 | MedR |" + (kept ? " kept i→t | kept t→i | pairs learned |" : ""));
        md.AppendLine("|---|---:|---:|---:|---:|---:|---:|---:|---:|" + (kept ? "---:|---:|---:|" : ""));
        void Row(string name, RetrievalScores i, RetrievalScores t, string? keptText) =>
            md.AppendLine(Invariant($"| {name} | {i.Hit1:F1} | {i.Hit5:F1} | {i.Hit10:F1} | {i.MedR:F1} | {t.Hit1:F1} | {t.Hit5:F1} | {t.Hit10:F1} | {t.MedR:F1} |") + (keptText is null ? "" : $" {keptText} |"));
        Row("random ranking", report.RandomI2T, report.RandomT2I, kept ? " | |" : null);   // three empty cells: kept i→t, kept t→i, pairs
        foreach (var arm in rows)
            Row(arm.Name, arm.I2T, arm.T2I, kept ? $"{Percent(report.ProtectionKept(arm, Direction.ImageToText))} | {Percent(report.ProtectionKept(arm, Direction.TextToImage))} | {Learned(arm)}" : null);
    }

    /// <summary>A recipe search's grid: each learning rate's best validation score and where it was reached.</summary>
    static string Trials(RecipeChoice recipe) =>
        string.Join("; ", recipe.Trials.Select(t => Invariant($"lr {t.LearningRate:G3}: {t.BestScore:F1} % at epoch {t.BestEpoch} of {t.Validation.Count}")));

    static string Percent(double? kept) => kept is { } k ? Invariant($"{k:F0} %") : "—";

    static string Learned(ArmResult arm) =>
        (arm.TrainPairs?.ToString(CultureInfo.InvariantCulture) ?? "—") + (arm.DroppedPairs is { } d ? $" ({d} dropped)" : "") + (arm.RewrittenCaptions is { } r ? $" ({r} captions cut)" : "");

    /// <summary>The worst case first: a reader should not have to find the weakest arm in the tables.</summary>
    static void Headline(StringBuilder md, ProtectionVerdict verdict)
    {
        md.AppendLine();
        md.AppendLine("## Protection kept, worst case over the hacker's defences");
        md.AppendLine();
        md.AppendLine("| direction | worst case | arm | clean hacker's gain over its start model (Hit@10 points) |");
        md.AppendLine("|---|---:|---|---:|");
        md.AppendLine($"| face → name (image→text) | {Percent(verdict.WorstImageToText.Kept)} | {verdict.WorstImageToText.Arm ?? "—"} | {Points(verdict.CleanGainImageToText)} |");
        md.AppendLine($"| name → face (text→image) | {Percent(verdict.WorstTextToImage.Kept)} | {verdict.WorstTextToImage.Arm ?? "—"} | {Points(verdict.CleanGainTextToImage)} |");
        if (verdict.CleanGainImageToText is < 10 || verdict.CleanGainTextToImage is < 10)
        {
            md.AppendLine();
            md.AppendLine("**The clean hacker gained under 10 Hit@10 points in a direction: it barely learns from these photos, so \"kept\" says little there.**");
        }
    }

    static string Points(double? gain) => gain is { } g ? Invariant($"{g:+0.0;-0.0}") : "—";

    static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
