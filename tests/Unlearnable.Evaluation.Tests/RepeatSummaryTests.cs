using Unlearnable.Training;

namespace Unlearnable.Evaluation.Tests;

/// <summary>`evaluate-attack summarize`'s library: repeats of one job read back from the report.json files the jobs wrote.</summary>
public sealed class RepeatSummaryTests : IDisposable
{
    readonly string root = Path.Combine(Path.GetTempPath(), "unlearnable-repeats-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(root)) Directory.Delete(root, recursive: true);
    }

    static ArmResult Arm(string kind, double i2t, double t2i, int? release = null, string? defence = null)
    {
        string name = kind + (release is { } r ? $" [release {r}]" : "") + (defence is null ? "" : $" after {defence}");
        return new ArmResult(name, kind, "tiny", kind == ArmKinds.Protected ? 1 : 0, defence, [],
            new RetrievalScores(0, 0, i2t, 10), new RetrievalScores(0, 0, t2i, 10), 1, Release: release);
    }

    /// <summary>
    /// A finished job as it lies on disk: clean hackers gain 50 points (face→name, 10 → 60) and 40 (name→face, 20 → 60)
    /// on every release; the protected arms reach <paramref name="made"/>, <paramref name="r1"/> and <paramref name="r3"/>
    /// Hit@10 in both directions; release 1 is also washed (jpeg:75) to <paramref name="r1Jpeg"/>.
    /// </summary>
    string Job(string name, int protectionSeed, double made, double r1, double r3, double r1Jpeg, AttackSpec? spec = null)
    {
        var arms = new List<ArmResult>();
        foreach (int? release in new int?[] { null, 1, 3 })
        {
            arms.Add(Arm(ArmKinds.PreTrained, 10, 20, release));
            arms.Add(Arm(ArmKinds.Clean, 60, 60, release));
        }
        foreach (var (release, hit) in new (int?, double)[] { (null, made), (1, r1), (3, r3) })
            arms.Add(Arm(ArmKinds.Protected, hit, hit, release));
        arms.Add(Arm(ArmKinds.Protected, r1Jpeg, r1Jpeg, 1, "jpeg:75"));
        spec ??= new AttackSpec { Name = "transfer", Preset = "tiny", Protection = new ProtectionSpec(ProtectionSource.Posts, Seed: protectionSeed) };
        var report = new AttackReport(spec.Name, spec, "d", 100, 100, new RetrievalScores(0, 0, 10, 50), new RetrievalScores(0, 0, 10, 50), null, arms, 1);
        var folder = Path.Combine(root, name);
        Directory.CreateDirectory(folder);
        AttackReportWriter.Write(folder, report);
        return folder;
    }

    static (string, AttackReport) Read(string folder) => (folder, RepeatSummary.ReadReport(folder));

    [Fact]
    public void RepeatsGiveEachArmsMeanAndRangeAndTheUnseenReleasesMeanPerRun()
    {
        // Face→name kept = (60 − hit) / 50; name→face = (60 − hit) / 40.
        var runs = new[] { Job("s0", 0, made: 16, r1: 20, r3: 40, r1Jpeg: 35), Job("s1", 1, made: 12, r1: 30, r3: 20, r1Jpeg: 25), Job("s2", 2, made: 20, r1: 25, r3: 25, r1Jpeg: 30) }
            .Select(Read).ToList();
        var summary = RepeatSummary.Of(runs);

        var made = summary.Rows.Single(r => r.Row == ArmKinds.Protected);
        Assert.Equal((88, 80, 96, 3), (made.ImageToText!.Mean, made.ImageToText.Min, made.ImageToText.Max, made.ImageToText.Runs));
        Assert.Equal((110, 100, 120), (made.TextToImage!.Mean, made.TextToImage.Min, made.TextToImage.Max));
        // Unseen releases: averaged within each run first (60, 70, 70 %), so the range is over runs, not single arms (40–80 %).
        var unseen = summary.Rows.Single(r => r.Row == RepeatSummary.UnseenRow).ImageToText!;
        Assert.Equal(200.0 / 3, unseen.Mean, 9);
        Assert.Equal((60, 70), (unseen.Min, unseen.Max));
        // A defence's unseen row holds only that defence's arms (release 1 after jpeg:75: 50, 70, 60 %).
        var washed = summary.Rows.Single(r => r.Row == $"{RepeatSummary.UnseenRow} after jpeg:75").ImageToText!;
        Assert.Equal((60, 50, 70), (washed.Mean, washed.Min, washed.Max));
        // The worst case per run over every arm and defence: 40 % (release 3), 60 % (release 1), 60 % (jpeg).
        var worst = summary.Rows.Single(r => r.Row == RepeatSummary.WorstRow).ImageToText!;
        Assert.Equal(160.0 / 3, worst.Mean, 9);
        Assert.Equal((40, 60), (worst.Min, worst.Max));
        Assert.Equal(["0/0", "0/1", "0/2"], summary.Seeds);

        var outDir = Path.Combine(root, "summary");
        RepeatSummaryWriter.Write(outDir, summary);
        Assert.Contains("| protected | 88 / 110 (80–96 / 100–120) | 3 |", File.ReadAllText(Path.Combine(outDir, "summary.md")));
        Assert.Equal([0x89, (byte)'P', (byte)'N', (byte)'G'], File.ReadAllBytes(Path.Combine(outDir, "kept-spread.png")).Take(4));
        Assert.Contains("\"unseen releases (mean) after jpeg:75\"", File.ReadAllText(Path.Combine(outDir, "summary.json")));
    }

    [Fact]
    public void RunsThatAreNotRepeatsOfOneJobAreRefusedSayingWhy()
    {
        var first = Read(Job("a", 0, 15, 20, 40, 35));
        var longer = Read(Job("b", 1, 15, 20, 40, 35,
            new AttackSpec { Name = "transfer", Preset = "tiny", Protection = new ProtectionSpec(ProtectionSource.Posts, TriggerLength: 5, Seed: 1) }));
        var e = Assert.Throws<ArgumentException>(() => RepeatSummary.Of([first, longer]));
        Assert.Contains("differs at 'protection.triggerLength'", e.Message);

        var twin = Read(Job("c", 0, 10, 10, 10, 10));
        Assert.Contains("same seeds (seed 0, protection seed 0)", Assert.Throws<ArgumentException>(() => RepeatSummary.Of([first, twin])).Message);
        Assert.Contains("two or more", Assert.Throws<ArgumentException>(() => RepeatSummary.Of([first])).Message);
        Assert.Contains("has no report.json", Assert.Throws<FileNotFoundException>(() => RepeatSummary.ReadReport(root)).Message);

        File.WriteAllText(Path.Combine(root, "a", "report.json"), "{ \"name\": ");
        Assert.Contains("not a readable report", Assert.Throws<InvalidDataException>(() => RepeatSummary.ReadReport(Path.Combine(root, "a"))).Message);
    }

    [Fact]
    public void AnotherJobSeedIsARepeatAsWell()
    {
        var spec = (int seed) => new AttackSpec { Name = "transfer", Seed = seed, Preset = "tiny", Protection = new ProtectionSpec(ProtectionSource.Posts) };
        var summary = RepeatSummary.Of([Read(Job("j0", 0, 15, 20, 40, 35, spec(0))), Read(Job("j1", 0, 10, 30, 20, 25, spec(1)))]);
        Assert.Equal(["0/0", "1/1"], summary.Seeds);
        Assert.Equal(2, summary.Rows.Single(r => r.Row == ArmKinds.Protected).Runs);
    }
}
