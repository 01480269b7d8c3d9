using System.Globalization;
using System.Text;

namespace Unlearnable.Experiments;

/// <summary>report.md (paper Table 5 style) and face-name-hit10.png (face→name Hit@10 per fine-tuning epoch, per arm).</summary>
public static class FaceStudyReportWriter
{
    public static void Write(string outDir, FaceStudyReport report)
    {
        var md = new StringBuilder();
        md.AppendLine(CultureInfo.InvariantCulture, $"# Face privacy — {report.Identities} people, {report.TrainPhotos} training photos, {report.TestPhotos} held out ({report.Preset})");
        md.AppendLine();
        md.AppendLine("| model | face→name Hit@1 | Hit@5 | Hit@10 | MedR | name→face Hit@1 | Hit@5 | Hit@10 | MedR |");
        md.AppendLine("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        void Row(string name, Training.RetrievalScores i, Training.RetrievalScores t) =>
            md.AppendLine(CultureInfo.InvariantCulture, $"| {name} | {i.Hit1:F1} | {i.Hit5:F1} | {i.Hit10:F1} | {i.MedR:F1} | {t.Hit1:F1} | {t.Hit5:F1} | {t.Hit10:F1} | {t.MedR:F1} |");
        Row("random ranking", report.RandomI2T, report.RandomT2I);
        foreach (var arm in report.Arms) Row(arm.Arm, arm.I2T, arm.T2I);
        md.AppendLine();
        md.AppendLine(CultureInfo.InvariantCulture, $"Protection: max L∞ {report.MaxLInfinity}/255; {report.DictionaryShare:P0} of trigger words are dictionary words.");
        md.AppendLine("Protection works when the MEM arm stays near the pre-trained model while the clean arm rises.");
        File.WriteAllText(Path.Combine(outDir, "report.md"), md.ToString());

        var series = report.Arms.Where(a => a.EpochI2THit10.Count > 0)
            .Select(a => new Series(a.Arm, Enumerable.Range(1, a.EpochI2THit10.Count).Select(e => (double)e).ToList(), a.EpochI2THit10))
            .Append(new Series("pre-trained", [1, Math.Max(1, report.Arms.Max(a => a.EpochI2THit10.Count))], [report.Arms[0].I2T.Hit10, report.Arms[0].I2T.Hit10], Dashed: true));
        Plots.Lines(Path.Combine(outDir, "face-name-hit10.png"), "Face → name retrieval on held-out photos", "fine-tuning epoch", "Hit@10 (%)", series);
    }
}
