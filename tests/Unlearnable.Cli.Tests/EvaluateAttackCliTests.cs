using System.Text.Json.Nodes;

namespace Unlearnable.Cli.Tests;

/// <summary>The <c>evaluate-attack</c> command as users run it: the CLI as a separate process.</summary>
[Trait("Kind", "Process")]
public class EvaluateAttackCliTests
{
    static string Temp() => TestFolders.New();

    [Fact]
    public void TheShippedCiSpecRunsEveryArmAndWritesTablesAndPictures()
    {
        var output = Temp();
        var (code, stdout, stderr) = CliTests.Run("evaluate-attack", "--spec", RepoFiles.Get("examples/attacks/face-study-ci.json"), "--out", output, "--device", "cpu");
        Assert.True(code == 0, stderr + stdout);

        var report = JsonNode.Parse(File.ReadAllText(Path.Combine(output, "report.json")))!;
        Assert.Equal(12, report["trainImages"]!.GetValue<int>());
        Assert.Equal(6, report["testImages"]!.GetValue<int>());
        var arms = report["arms"]!.AsArray();
        Assert.Equal(["pre-trained", "clean", "protected", "pre-trained [tiny-vit]", "clean [tiny-vit]", "protected [tiny-vit]", "protected 50%", "protected + jpeg:50",
            "protected + filter:0.25", "protected + captions", "protected + grayscale+augment"],
            arms.Select(a => a!["name"]!.GetValue<string>()));
        foreach (var arm in arms)
        {
            var epochs = arm!["epochs"]!.AsArray().Select(e => e!["epoch"]!.GetValue<int>()).ToList();
            Assert.Equal(arm["kind"]!.GetValue<string>() == "pre-trained" ? [0] : [0, 1], epochs);
            Assert.InRange(arm["i2t"]!["medR"]!.GetValue<double>(), 1, 30);
        }
        Assert.InRange(report["protection"]!["maxLInfinity"]!.GetValue<int>(), 1, 8);
        Assert.Equal(report["randomI2t"]!["hit10"]!.GetValue<double>(), 100.0 * (1 - Enumerable.Range(0, 5).Aggregate(1.0, (s, j) => s * (30 - 10 - j) / (30.0 - j))), 6);

        var md = File.ReadAllText(Path.Combine(output, "report.md"));
        foreach (var section in new[] { "## Same architecture", "## Transfer", "## Poison fraction", "## The hacker's defences", "| protected + jpeg:50 |",
                     "## Protection kept, worst case over the hacker's defences", "| 9 (3 dropped) |", "| 12 (12 captions cut) |" })
            Assert.Contains(section, md);
        // What each defence did to the training set is counted, and the worst case is the lowest kept share over them.
        var filtered = arms.Single(a => a!["name"]!.GetValue<string>() == "protected + filter:0.25")!;
        Assert.Equal((9, 3), (filtered["trainPairs"]!.GetValue<int>(), filtered["droppedPairs"]!.GetValue<int>()));
        Assert.Equal(12, arms.Single(a => a!["name"]!.GetValue<string>() == "protected + captions")!["rewrittenCaptions"]!.GetValue<int>());
        var verdict = report["verdict"]!;
        var kept = verdict["arms"]!.AsArray().Select(a => a!["imageToText"]?.GetValue<double>()).OfType<double>().ToList();
        if (kept.Count > 0) Assert.Equal(kept.Min(), verdict["worstImageToText"]!["kept"]!.GetValue<double>(), 6);
        Assert.Equal(5, verdict["arms"]!.AsArray().Count);
        foreach (var png in new[] { "kept.png", "attention.png", "loss.png", "i2t-hit10.png", "i2t-medr.png", "t2i-medr.png", "examples.png", "tsne-clean.png", "tsne-protected.png" })
            Assert.True(new FileInfo(Path.Combine(output, png)).Length > 2000, png);

        // `summarize` reads the job's report back with a repeat of it (the same report under another protection seed):
        // every kept share's mean and range are the job's own figure.
        var repeat = Temp();
        Directory.CreateDirectory(repeat);
        report["spec"]!["protection"]!["seed"] = 7;
        File.WriteAllText(Path.Combine(repeat, "report.json"), report.ToJsonString());
        var summaryDir = Temp();
        (code, stdout, stderr) = CliTests.Run("evaluate-attack", "summarize", output, repeat, "--out", summaryDir);
        Assert.True(code == 0, stderr + stdout);
        var row = JsonNode.Parse(File.ReadAllText(Path.Combine(summaryDir, "summary.json")))!["rows"]!.AsArray()
            .Single(r => r!["row"]!.GetValue<string>() == "protected")!;
        if (verdict["arms"]![0]!["imageToText"]?.GetValue<double>() is { } protectedKept)
            foreach (var stat in new[] { "mean", "min", "max" }) Assert.Equal(protectedKept, row["imageToText"]![stat]!.GetValue<double>(), 9);
        Assert.Contains("| protected |", File.ReadAllText(Path.Combine(summaryDir, "summary.md")));
        Assert.True(new FileInfo(Path.Combine(summaryDir, "kept-spread.png")).Length > 2000);
    }

    [Fact]
    public void SummarizeRefusesASingleRunAndAFolderWithoutAReport()
    {
        var (code, _, stderr) = CliTests.Run("evaluate-attack", "summarize", Temp(), "--out", Temp());
        Assert.Equal(2, code);
        Assert.Contains("two or more run folders", stderr);
        var empty = Temp();
        Directory.CreateDirectory(empty);
        (code, _, stderr) = CliTests.Run("evaluate-attack", "summarize", empty, Temp(), "--out", Temp());
        Assert.Equal(2, code);
        Assert.Contains($"{empty} has no report.json", stderr);
    }

    /// <summary>A spec the validator refuses (EvaluationTests check which fields it names) stops the command with exit code 2 before it writes anything.</summary>
    [Fact]
    public void ABadSpecFileIsRefusedBeforeAnythingIsWritten()
    {
        var file = Path.Combine(Temp(), "bad.json");
        Directory.CreateDirectory(Path.GetDirectoryName(file)!);
        File.WriteAllText(file, """{ "preset": "tiny", "arms": { "fractions": [-0.2] } }""");
        var output = Temp();
        var (code, _, stderr) = CliTests.Run("evaluate-attack", "--spec", file, "--out", output);
        Assert.Equal(2, code);
        Assert.Contains("arms.fractions[0]: -0.2 is outside 0–1", stderr);
        Assert.False(Directory.Exists(output));
    }
}
