using System.Globalization;
using System.Text;
using System.Text.Json;
using Unlearnable.Charts;

namespace Unlearnable.Evaluation;

/// <summary>summary.json, summary.md (the results pages' "mean (range)" table) and kept-spread.png (bars with each range as a whisker).</summary>
public static class RepeatSummaryWriter
{
    public static void Write(string outDir, RepeatSummary summary)
    {
        Directory.CreateDirectory(outDir);
        File.WriteAllText(Path.Combine(outDir, "summary.json"), JsonSerializer.Serialize(summary, AttackSpec.Json));
        File.WriteAllText(Path.Combine(outDir, "summary.md"), Markdown(summary));
        var rows = summary.Rows;
        static (double, double)? Range(KeptSpread? k) => k is null ? null : (k.Min, k.Max);
        Plots.GroupedBars(Path.Combine(outDir, "kept-spread.png"), $"Protection kept over {summary.Runs.Count} runs (mean; whisker: range)", "kept (%)",
            rows.Select(r => r.Row).ToList(),
            [("face → name (image→text)", rows.Select(r => r.ImageToText?.Mean).ToList()), ("name → face (text→image)", rows.Select(r => r.TextToImage?.Mean).ToList())],
            [rows.Select(r => Range(r.ImageToText)).ToList(), rows.Select(r => Range(r.TextToImage)).ToList()]);
    }

    /// <summary>"84 / 84 (81–85 / 80–87)": the means, then the ranges, as the results pages write them.</summary>
    public static string Cell(RowSpread row) =>
        $"{Mean(row.ImageToText)} / {Mean(row.TextToImage)} ({Range(row.ImageToText)} / {Range(row.TextToImage)})";

    static string Mean(KeptSpread? k) => k is null ? "–" : k.Mean.ToString("F0", CultureInfo.InvariantCulture);
    static string Range(KeptSpread? k) => k is null ? "–" : k.Min.ToString("F0", CultureInfo.InvariantCulture) + "–" + k.Max.ToString("F0", CultureInfo.InvariantCulture);

    public static string Markdown(RepeatSummary summary)
    {
        var md = new StringBuilder();
        md.AppendLine($"# {summary.Name}: {summary.Runs.Count} runs");
        md.AppendLine();
        md.AppendLine("Protection kept, percent of the clean hacker's Hit@10 gain taken away (100 % = the hacker learned nothing): mean over the runs, range in brackets.");
        md.AppendLine();
        md.AppendLine("| | face→name / name→face kept | runs |");
        md.AppendLine("|---|---:|---:|");
        foreach (var row in summary.Rows)
            md.AppendLine($"| {row.Row} | {Cell(row)} | {row.Runs} |");
        md.AppendLine();
        md.AppendLine("| run | seed / protection seed |");
        md.AppendLine("|---|---|");
        for (int i = 0; i < summary.Runs.Count; i++) md.AppendLine($"| {summary.Runs[i]} | {summary.Seeds[i]} |");
        return md.ToString();
    }
}
