using System.Text.Json.Nodes;
using Unlearnable.Experiments;
using Unlearnable.Imaging;

namespace Unlearnable.Cli.Tests;

[Trait("Kind", "Process")]
public class ExperimentCliTests
{
    static string Temp() => TestFolders.New();

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
            // Every line chart keeps its legend beside the curves, never over them: the same width for six lines as for seven.
            Assert.Equal((1150, 560), (image.Width, image.Height));
        }

        (code, stdout, stderr) = CliTests.Run(["experiment", "table1", "--data", data, "--out", output, .. Quick]);
        Assert.True(code == 0, stderr);
        Assert.Equal(6, stdout.Split('\n').Count(l => l.Contains("done earlier, kept")));
    }

    [Fact]
    public void TheRobustnessArmTrainsTheHackerOnWashedImages()
    {
        var data = Temp();
        Assert.Equal(0, CliTests.Run("dataset", "synthetic", "--out", data, "--images", "24", "--test", "6", "--size", "64").Code);
        var output = Temp();
        var (code, stdout, stderr) = CliTests.Run(["experiment", "table1", "--data", data, "--out", output, "--methods", "clean,em", "--countermeasure", "jpeg:75", .. Quick]);
        Assert.True(code == 0, stderr + stdout);
        Assert.Contains("em: hacker applied jpeg:75 to every training image", stdout);
        Assert.Contains("applied `jpeg:75`", File.ReadAllText(Path.Combine(output, "report.md")));
        var bad = CliTests.Run(["experiment", "table1", "--data", data, "--out", Temp(), "--countermeasure", "sharpen:2", .. Quick]);
        Assert.Equal(2, bad.Code);
        Assert.Contains("unknown countermeasure 'sharpen:2'", bad.Err);
        var noEpsilon = CliTests.Run(["experiment", "table1", "--data", data, "--out", Temp(), "--epsilon", "0", .. Quick]);
        Assert.Equal(2, noEpsilon.Code);
        Assert.Contains("--epsilon must be in (0, 255]", noEpsilon.Err);
        Assert.DoesNotContain("clean: epoch", noEpsilon.Out);
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

    [Fact]
    public void TheFaceStudyComparesPreTrainedCleanAndProtectedFineTuning()
    {
        var output = TestFolders.New();
        var (code, stdout, stderr) = CliTests.Run("experiment", "faces", "--preset", "tiny", "--out", output, "--identities", "5", "--photos", "3",
            "--pretrain-images", "64", "--pretrain-epochs", "1", "--epochs", "2", "--lr", "1e-4", "--batch-size", "5", "--rounds", "1",
            "--surrogate-steps", "1", "--trigger-rounds", "1", "--device", "cpu");
        Assert.True(code == 0, stderr + stdout);
        var report = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(output, "report.json")))!;
        Assert.Equal(10, report["trainImages"]!.GetValue<int>());
        Assert.Equal(5, report["testImages"]!.GetValue<int>());
        var arms = report["arms"]!.AsArray();
        Assert.Equal(["pre-trained", "clean", "protected"], arms.Select(a => a!["name"]!.GetValue<string>()));
        Assert.Equal(3, arms[1]!["epochs"]!.AsArray().Count);   // before fine-tuning and after each of 2 epochs
        Assert.InRange(report["protection"]!["maxLInfinity"]!.GetValue<int>(), 1, 8);
        Assert.Equal(5, Directory.GetDirectories(Path.Combine(output, "work", "data", "identities")).Length);
        Assert.True(new FileInfo(Path.Combine(output, "i2t-hit10.png")).Length > 1000);
        Assert.Contains("| protected |", File.ReadAllText(Path.Combine(output, "report.md")));
    }

    [Fact]
    public void TheFaceStudyRefusesAMissingIdentityFolderBeforeTraining()
    {
        var output = TestFolders.New();
        var (code, _, stderr) = CliTests.Run("experiment", "faces", "--preset", "tiny", "--out", output, "--identity-folder", "/nonexistent/faces");
        Assert.Equal(2, code);
        Assert.Contains("/nonexistent/faces does not exist", stderr);
        Assert.False(Directory.Exists(output));
    }

    [Fact]
    public void ImageOnlyProtectsAnIdentitySetsTrainingPhotosUnderTheJobsIdsAndCaptions()
    {
        var people = Temp();
        for (int p = 0; p < 3; p++)
        {
            Directory.CreateDirectory(Path.Combine(people, $"Person_{p}"));
            for (int n = 0; n < 3; n++)   // odd-shaped photos with real entropy, as JPEGs
            {
                using var photo = SafeImageDecoder.Decode(ImageOnlyNoiseTests.RandomPng(90, 70, 10 * p + n));
                File.WriteAllBytes(Path.Combine(people, $"Person_{p}", $"{n}.jpg"), ImageEncoding.Jpeg(photo, 90));
            }
        }
        var surrogate = Path.Combine(Temp() + ".safetensors");
        using (var model = new Clip.Model.ClipModel(Clip.Model.ClipPresets.Get("tiny"))) Clip.Checkpoints.ClipCheckpoint.Save(model, surrogate);

        var output = Temp();
        var (code, stdout, stderr) = CliTests.Run("experiment", "image-only", "--data", people, "--surrogate", surrogate, "--kind", "pattern", "--out", output, "--seed", "4", "--device", "cpu");
        Assert.True(code == 0, stderr + stdout);
        Assert.Contains("6 photos of 3 people protected (pattern", stdout);

        // An attack job of the same data and seed takes every training photo from the folder, each protected within ε.
        var spec = new Evaluation.AttackSpec
        {
            Seed = 4, Data = new Evaluation.DataSpec(Evaluation.DataKind.Identities, people),
            Protection = new Evaluation.ProtectionSpec(Evaluation.ProtectionSource.Folder, Path: output),
        };
        var train = Evaluation.JobData.Load(spec.Data, 4, 64, Temp()).Train;
        var (items, summary) = new Evaluation.ProtectionStage(spec, TorchSharp.torch.CPU, Temp()).Run(train, () => throw new InvalidOperationException("no surrogate is needed"), default);
        Assert.Equal(train.Select(t => string.Join("|", t.Captions)), items.Select(i => string.Join("|", i.Captions)));
        for (int i = 0; i < train.Count; i++)
        {
            using var clean = SafeImageDecoder.Decode(train[i].Image.ReadBytes());
            using var protectedImage = SafeImageDecoder.Decode(items[i].Image.ReadBytes());
            Assert.InRange(PixelDifference.LInfinity(clean, protectedImage), 1, 8);
        }

        // Captioned under another seed (other invented names), the same positions are refused, naming the field.
        var other = spec with { Seed = 5 };
        var refused = Assert.Throws<Evaluation.SpecException>(() => new Evaluation.ProtectionStage(other, TorchSharp.torch.CPU, Temp())
            .Run(Evaluation.JobData.Load(other.Data, 5, 64, Temp()).Train, () => throw new InvalidOperationException(), default));
        Assert.Equal("protection.path", refused.Violations.Single().Field);
        Assert.Contains("with this job's seed", refused.Message);

        (code, _, stderr) = CliTests.Run("experiment", "image-only", "--data", people, "--surrogate", surrogate, "--kind", "magic", "--out", Temp());
        Assert.NotEqual(0, code);
        Assert.Contains("--kind must be cloak or pattern, not 'magic'", stderr);
        (code, _, stderr) = CliTests.Run("experiment", "image-only", "--data", people, "--surrogate", surrogate, "--kind", "cloak", "--epsilon", "0", "--out", Temp());
        Assert.NotEqual(0, code);
        Assert.Contains("--epsilon must be 1-32", stderr);
        var missing = Temp();
        (code, _, stderr) = CliTests.Run("experiment", "image-only", "--data", missing, "--surrogate", surrogate, "--kind", "cloak", "--out", Temp());
        Assert.NotEqual(0, code);
        Assert.Contains(missing, stderr);
    }
}
