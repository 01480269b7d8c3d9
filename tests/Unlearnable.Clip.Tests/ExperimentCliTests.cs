using System.Text.Json.Nodes;
using Unlearnable.Experiments;
using Unlearnable.Imaging;

namespace Unlearnable.Clip.Tests;

public class ExperimentCliTests
{
    static string Temp() => Path.Combine(Path.GetTempPath(), "unlearnable-tests", Guid.NewGuid().ToString("N"));

    static readonly string[] Quick =
        ["--preset", "tiny", "--epochs", "2", "--batch-size", "14", "--rounds", "1", "--surrogate-steps", "2", "--pgd-steps", "2", "--trigger-rounds", "1", "--device", "cpu"];

    [Fact]
    public void Table1WritesEveryRowTheMarkdownAndThePlotsAndKeepsFinishedRows()
    {
        var data = Temp();
        Assert.Equal(0, CliTests.Run("dataset", "synthetic", "--out", data, "--images", "36", "--test", "8", "--size", "64").Code);
        var output = Temp();
        var (code, stdout, stderr) = CliTests.Run(["experiment", "table1", "--data", data, "--out", output, .. Quick]);
        Assert.True(code == 0, stderr + stdout);

        var report = JsonNode.Parse(File.ReadAllText(Path.Combine(output, "report.json")))!;
        var rows = report["rows"]!.AsArray();
        Assert.Equal(Table1Settings.AllMethods, rows.Select(r => r!["method"]!.GetValue<string>()));
        foreach (var row in rows)
        {
            foreach (var key in new[] { "hit1", "hit5", "hit10", "medr" })
            {
                Assert.NotNull(row!["i2t"]![key]);
                Assert.NotNull(row!["t2i"]![key]);
            }
            Assert.Equal(2, row!["epoch_i2t_medr"]!.AsArray().Count);
            Assert.InRange(row!["max_linf"]!.GetValue<double>(), 0, 8);
        }
        Assert.Equal(0, rows[0]!["max_linf"]!.GetValue<double>());                   // clean is untouched
        Assert.InRange(rows[1]!["max_linf"]!.GetValue<double>(), 1, 8);              // random noise is bounded
        Assert.NotNull(rows[4]!["dictionary_word_share"]);
        var markdown = File.ReadAllText(Path.Combine(output, "report.md"));
        Assert.Contains("| mem-5 |", markdown);
        Assert.Contains("| random ranking |", markdown);
        foreach (var png in new[] { "hacker-loss.png", "medr-i2t.png", "medr-t2i.png" })
        {
            using var image = SafeImageDecoder.Decode(File.ReadAllBytes(Path.Combine(output, png)));
            Assert.Equal((900, 560), (image.Width, image.Height));
        }

        (code, stdout, stderr) = CliTests.Run(["experiment", "table1", "--data", data, "--out", output, .. Quick]);
        Assert.True(code == 0, stderr);
        Assert.Equal(6, stdout.Split('\n').Count(l => l.Contains("done earlier, kept")));
    }

    [Fact]
    public void UnknownMethodsAreRefused()
    {
        var data = Temp();
        Assert.Equal(0, CliTests.Run("dataset", "synthetic", "--out", data, "--images", "12", "--size", "64").Code);
        var (code, _, stderr) = CliTests.Run(["experiment", "table1", "--data", data, "--out", Temp(), "--methods", "clean,tap", .. Quick]);
        Assert.Equal(2, code);
        Assert.Contains("unknown method(s) tap", stderr);
    }
}
