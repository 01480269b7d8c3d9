using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using Unlearnable.Charts;
using Unlearnable.Data;
using Unlearnable.Training;

namespace Unlearnable.Experiments;

/// <summary>report.json, report.md (the paper's Table 1 layout) and the Fig. 4-style curves.</summary>
public static class Table1Report
{
    public static void Write(string outDir, Table1Settings settings, IReadOnlyList<MethodRow> rows, IReadOnlyList<CaptionedImage> test)
    {
        var random = RetrievalMetrics.Compute(new float[test.Count, test.Sum(t => t.Captions.Count)],
            test.SelectMany((t, i) => t.Captions.Select(_ => i)).ToArray());
        var json = new JsonObject
        {
            ["preset"] = settings.Architecture.Name, ["quickGelu"] = settings.Architecture.QuickGelu,
            ["test_images"] = test.Count,
            ["random_baseline"] = new JsonObject { ["i2t"] = RetrievalJson.Scores(random.RandomImageToText), ["t2i"] = RetrievalJson.Scores(random.RandomTextToImage) },
            ["rows"] = new JsonArray(rows.Select(r => (JsonNode?)new JsonObject
            {
                ["method"] = r.Method,
                ["i2t"] = RetrievalJson.Scores(r.I2T),
                ["t2i"] = RetrievalJson.Scores(r.T2I),
                ["epoch_loss"] = new JsonArray(r.EpochLoss.Select(v => (JsonNode?)Math.Round(v, 4)).ToArray()),
                ["epoch_i2t_medr"] = new JsonArray(r.EpochI2TMedR.Select(v => (JsonNode?)v).ToArray()),
                ["epoch_t2i_medr"] = new JsonArray(r.EpochT2IMedR.Select(v => (JsonNode?)v).ToArray()),
                ["protect_seconds"] = Math.Round(r.ProtectSeconds, 1),
                ["train_seconds"] = Math.Round(r.TrainSeconds, 1),
                ["max_linf"] = r.MaxLInfinity,
                ["mean_psnr"] = double.IsFinite(r.MeanPsnr) ? Math.Round(r.MeanPsnr, 2) : null,
                ["dictionary_word_share"] = r.DictionaryShare is { } d ? Math.Round(d, 4) : null,
                ["protection_round_losses"] = new JsonArray(r.ProtectionRoundLosses.Select(v => (JsonNode?)Math.Round(v, 4)).ToArray()),
            }).ToArray()),
        };
        File.WriteAllText(Path.Combine(outDir, "report.json"), json.ToJsonString(new() { WriteIndented = true }));
        File.WriteAllText(Path.Combine(outDir, "report.md"), Markdown(settings, rows, random, test.Count));

        var epochs = (IReadOnlyList<double> v) => Enumerable.Range(1, v.Count).Select(e => (double)e).ToList();
        Plots.Lines(Path.Combine(outDir, "hacker-loss.png"), "Hacker training loss on protected data", "epoch", "contrastive loss",
            rows.Select(r => new Series(r.Method, epochs(r.EpochLoss), r.EpochLoss)));
        foreach (var (name, pick, baseline) in new[] { ("i2t", (Func<MethodRow, List<double>>)(r => r.EpochI2TMedR), random.RandomImageToText.MedR),
                                                       ("t2i", r => r.EpochT2IMedR, random.RandomTextToImage.MedR) })
        {
            var series = rows.Select(r => new Series(r.Method, epochs(pick(r)), pick(r))).ToList();
            int n = rows.Max(r => pick(r).Count);
            series.Add(new Series("random ranking", [1, n], [baseline, baseline], Dashed: true));
            Plots.Lines(Path.Combine(outDir, $"medr-{name}.png"), $"Clean-test {name} MedR of the hacker (lower = learned more)", "epoch", "MedR", series);
        }
    }

    static string Markdown(Table1Settings settings, IReadOnlyList<MethodRow> rows, RetrievalReport random, int testImages)
    {
        var c = CultureInfo.InvariantCulture;
        var md = new StringBuilder();
        md.AppendLine($"# Table 1 — hacker trained from scratch on protected data ({settings.Architecture.Name}, {testImages} clean test images)");
        md.AppendLine();
        if (settings.Countermeasure is { } countermeasure)
        {
            md.AppendLine($"Robustness arm: the hacker applied `{countermeasure}` to every training image before training.");
            md.AppendLine();
        }
        md.AppendLine("| method | i2t Hit@1 | i2t Hit@5 | i2t Hit@10 | i2t MedR | t2i Hit@1 | t2i Hit@5 | t2i Hit@10 | t2i MedR |");
        md.AppendLine("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        string Cells(RetrievalScores s) => string.Format(c, "{0:F1} | {1:F1} | {2:F1} | {3:F1}", s.Hit1, s.Hit5, s.Hit10, s.MedR);
        md.AppendLine($"| random ranking | {Cells(random.RandomImageToText)} | {Cells(random.RandomTextToImage)} |");
        foreach (var r in rows) md.AppendLine($"| {r.Method} | {Cells(r.I2T)} | {Cells(r.T2I)} |");
        md.AppendLine();
        md.AppendLine("Hit@k in %, MedR = median rank (1-based). Higher MedR on clean test data = stronger protection.");
        md.AppendLine();
        md.AppendLine("| method | protect s | train s | max L∞ (/255) | mean PSNR dB | dictionary words |");
        md.AppendLine("|---|---:|---:|---:|---:|---:|");
        foreach (var r in rows)
            md.AppendLine(string.Format(c, "| {0} | {1:F0} | {2:F0} | {3} | {4} | {5} |", r.Method, r.ProtectSeconds, r.TrainSeconds, r.MaxLInfinity,
                double.IsFinite(r.MeanPsnr) ? r.MeanPsnr.ToString("F1", c) : "—", r.DictionaryShare is { } d ? d.ToString("P0", c) : "—"));
        return md.ToString();
    }
}
