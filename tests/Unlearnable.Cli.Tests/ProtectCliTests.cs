using System.Text.Json.Nodes;
using Unlearnable.Data;
using Unlearnable.Imaging;
using Unlearnable.Protection;
using Unlearnable.Tests.Shared;

namespace Unlearnable.Cli.Tests;

[Trait("Kind", "Process")]
public class ProtectCliTests
{
    static string Temp() => TestFolders.New();

    [Fact]
    public void ProtectWritesALoadableDataSetWithinEpsilonAndTriggeredCaptions()
    {
        var data = Temp();
        Assert.Equal(0, CliTests.Run("dataset", "synthetic", "--out", data, "--images", "30", "--test", "6", "--size", "80").Code);
        var output = Temp();
        var (code, stdout, stderr) = CliTests.Run("protect", "--method", "mem", "--data", data, "--out", output, "--preset", "tiny",
            "--rounds", "1", "--surrogate-steps", "2", "--pgd-steps", "3", "--trigger-rounds", "1", "--top-k", "3", "--batch-size", "12",
            "--trigger-length", "2", "--device", "cpu");
        Assert.True(code == 0, stderr + stdout);

        var original = DatasetLoader.Load(data);
        var protectedSet = DatasetLoader.Load(output);
        Assert.Equal(original.Items.Count, protectedSet.Items.Count);
        var report = JsonNode.Parse(File.ReadAllText(Path.Combine(output, "protection.json")))!;
        Assert.Equal("mem", report["method"]!.GetValue<string>());
        Assert.Equal("common-words", report["vocabulary"]!.GetValue<string>());
        Assert.True(report["dictionary_word_share"]!.GetValue<double>() > 0.5);
        var images = report["images"]!.AsArray();
        Assert.Equal(24, images.Count);
        foreach (var item in protectedSet.Items)
        {
            var before = original.Items.Single(i => i.Id == item.Id);
            if (item.Split != Split.Train)
            {
                Assert.Equal(before.Image.ReadBytes(), item.Image.ReadBytes());   // the clean test split is untouched
                Assert.Equal(before.Captions, item.Captions);
                continue;
            }
            using var a = SafeImageDecoder.Decode(before.Image.ReadBytes());
            using var b = SafeImageDecoder.Decode(item.Image.ReadBytes());
            Assert.InRange(PixelDifference.LInfinity(a, b), 0, 8);
            var entry = images.Single(e => e!["id"]!.GetValue<string>() == item.Id)!;
            Assert.Equal(PixelDifference.LInfinity(a, b), entry["linf"]!.GetValue<int>());
            for (int c = 0; c < item.Captions.Count; c++)
            {
                var trigger = entry["triggers"]![c]!.GetValue<string>();
                Assert.Equal(trigger + " " + before.Captions[c], item.Captions[c]);
                Assert.Equal(2, trigger.Split(' ').Length);
            }
        }
        Assert.Contains(images, e => e!["linf"]!.GetValue<int>() > 0);
    }

    [Fact]
    public void ProtectPublishesJpegsAtTheChosenStrengthAndKeepsEachOriginalsFormatByDefault()
    {
        // Phone-style JPEG originals (larger than the model input) in a captions folder.
        var data = Temp();
        var items = Enumerable.Range(0, 6).Select(i => new CaptionedImage($"p{i}",
            new MemoryImage($"p{i}", Data.Synthetic.PhonePhoto.Jpeg(240 + 16 * i, 180, quality: 88, seed: i, grey: i == 0)), [$"photo number {i}"], Split.Train)).ToList();
        Data.Formats.CaptionsJsonl.Save(new CaptionDataset("phone", items), data);

        string Protect(params string[] extra)
        {
            var output = Temp();
            var (code, stdout, stderr) = CliTests.Run(["protect", "--data", data, "--out", output, "--preset", "tiny", "--rounds", "1", "--surrogate-steps", "1",
                "--pgd-steps", "2", "--trigger-rounds", "1", "--top-k", "3", "--batch-size", "6", "--device", "cpu", .. extra]);
            Assert.True(code == 0, stderr + stdout);
            return output;
        }

        var kept = DatasetLoader.Load(Protect("--strength", "high"));
        var report = JsonNode.Parse(File.ReadAllText(Path.Combine(Directory.GetParent(((FileImage)kept.Items[0].Image).Path)!.Parent!.FullName, "protection.json")))!;
        Assert.Equal(12, report["settings"]!["Epsilon"]!.GetValue<double>(), 6);
        foreach (var item in kept.Items)
        {
            var bytes = item.Image.ReadBytes();
            Assert.Equal(OutputFormat.Jpeg, ImageFormats.Sniff(bytes));
            Assert.EndsWith(".jpg", ((FileImage)item.Image).Path);
            using var a = SafeImageDecoder.Decode(items.Single(i => i.Id == item.Id).Image.ReadBytes());
            using var b = SafeImageDecoder.Decode(bytes);
            Assert.Equal((a.Width, a.Height), (b.Width, b.Height));
            Assert.InRange(PixelDifference.LInfinity(a, b), 1, 12);
            if (item.Id == "p0") Assert.True(ImageEncoding.IsGrey(b), "a grey photo came back coloured");
        }

        var asPng = DatasetLoader.Load(Protect("--strength", "low", "--format", "Png"));
        Assert.All(asPng.Items, item =>
        {
            Assert.Equal(OutputFormat.Png, ImageFormats.Sniff(item.Image.ReadBytes()));
            using var a = SafeImageDecoder.Decode(items.Single(i => i.Id == item.Id).Image.ReadBytes());
            using var b = SafeImageDecoder.Decode(item.Image.ReadBytes());
            Assert.InRange(PixelDifference.LInfinity(a, b), 1, 4);
        });
    }

    [Theory]
    [InlineData("--epsilon must be in (0, 255]", "--epsilon", "0")]
    [InlineData("--strength must be low, medium or high, not 'extreme'", "--strength", "extreme")]
    [InlineData("--jpeg-quality must be in 1..100", "--jpeg-quality", "0")]
    [InlineData("--format", "--format", "gif")]
    [InlineData("--trigger-length must be at least 1", "--trigger-length", "0")]
    [InlineData("does not fit", "--trigger-length", "40")]
    [InlineData("--fraction must be between 0 and 1", "--fraction", "1.5")]
    [InlineData("pass --surrogate", "--method", "uap")]
    [InlineData("--method must be em, uap or mem, not 'magic'", "--method", "magic")]
    [InlineData("--robust-to must be none or platform", "--robust-to", "2")]
    [InlineData("--top-k must be at least 1", "--top-k", "0")]
    [InlineData("--device must be cpu, cuda, cuda:N or auto", "--device", "gpu")]
    [InlineData("--vocabulary must be", "--vocabulary", "klingon")]
    [InlineData("--trigger-scope must be image or caption, not 'word'", "--trigger-scope", "word")]
    [InlineData("--precision must be float32 or bfloat16, not 'float16'", "--precision", "float16")]
    [InlineData("--input-diversity must be in [0, 1]", "--input-diversity", "1.5")]
    [InlineData("--skip-erosion must be in [0, 1)", "--skip-erosion", "1")]
    [InlineData("--ensemble-step must be mean or drawn, not 'sometimes'", "--ensemble-step", "sometimes")]
    public void BadProtectOptionsFailBeforeAnyWork(string expected, string option, string value)
    {
        var data = Temp();
        Assert.Equal(0, CliTests.Run("dataset", "synthetic", "--out", data, "--images", "10", "--size", "64").Code);
        var output = Temp();
        var (code, _, stderr) = CliTests.Run("protect", "--data", data, "--out", output, "--preset", "tiny", option, value);
        Assert.Equal(2, code);
        Assert.Contains(expected, stderr);
        Assert.False(Directory.Exists(output));
    }

    [Fact]
    public void ProtectAgainstAnEnsembleOfCheckpointsTrainsEachAndRefusesMembersThatReadOtherText()
    {
        var data = Temp();
        Assert.Equal(0, CliTests.Run("dataset", "synthetic", "--out", data, "--images", "14", "--test", "4", "--size", "64").Code);
        var models = Temp();
        string Checkpoint(string preset, int seed)
        {
            Clip.Runtime.TorchRuntime.Seed(seed);
            using var model = new Clip.Model.ClipModel(Clip.Model.ClipPresets.Get(preset));
            var path = Path.Combine(models, $"{preset}-{seed}.safetensors");
            Clip.Checkpoints.ClipCheckpoint.Save(model, path);
            return path;
        }
        string resnet = Checkpoint("tiny", 1), vit = Checkpoint("tiny-vit", 2);
        var output = Temp();
        var (code, stdout, stderr) = CliTests.Run("protect", "--method", "mem", "--data", data, "--out", output, "--surrogate", resnet, "--surrogate", vit,
            "--rounds", "1", "--surrogate-steps", "1", "--pgd-steps", "2", "--trigger-rounds", "1", "--batch-size", "10", "--trigger-length", "1", "--device", "cpu",
            "--ensemble-step", "drawn", "--input-diversity", "0.5");
        Assert.True(code == 0, stderr + stdout);
        Assert.Contains("on tiny + tiny-vit", stdout);
        var report = JsonNode.Parse(File.ReadAllText(Path.Combine(output, "protection.json")))!;
        Assert.Equal((0.5, (int)Protection.EnsembleStep.Drawn), (report["settings"]!["InputDiversity"]!.GetValue<double>(), report["settings"]!["EnsembleStep"]!.GetValue<int>()));
        Assert.Equal(["tiny-1.safetensors", "tiny-vit-2.safetensors"], report["surrogates"]!.AsArray().Select(n => n!.GetValue<string>()));
        Assert.True(File.Exists(Path.Combine(output + ".work", "surrogate-member1.safetensors")), "the second member took its own surrogate steps");

        // "small" reads 77 text tokens, tiny 32: one caption batch cannot feed both.
        var refused = Temp();
        var (badCode, _, badErr) = CliTests.Run("protect", "--data", data, "--out", refused, "--surrogate", resnet, "--surrogate", Checkpoint("small", 3), "--device", "cpu");
        Assert.Equal(2, badCode);
        Assert.Contains("--surrogate: an ensemble's members must read the same text context", badErr);
        Assert.False(Directory.Exists(refused));
    }

    /// <summary>A masked LM as the trigger vocabulary (a small random BERT written by the test, see <see cref="TinyBert"/>).</summary>
    [Fact]
    public void ProtectWithAMaskedLmVocabularyUsesOnlyItsProposals()
    {
        var bert = TinyBert.Write();
        var data = TestFolders.New();
        Assert.Equal(0, CliTests.Run("dataset", "synthetic", "--out", data, "--images", "14", "--test", "4", "--size", "64").Code);
        var output = data + "-protected";
        var (code, stdout, stderr) = CliTests.Run("protect", "--method", "mem", "--data", data, "--out", output, "--preset", "tiny",
            "--rounds", "1", "--surrogate-steps", "1", "--pgd-steps", "1", "--trigger-rounds", "1", "--batch-size", "10",
            "--trigger-length", "3", "--trigger-scope", "image", "--vocabulary", "mlm:" + bert, "--device", "cpu");
        Assert.True(code == 0, stderr + stdout);
        var report = JsonNode.Parse(File.ReadAllText(Path.Combine(output, "protection.json")))!;
        Assert.Equal("mlm:tiny-bert", report["vocabulary"]!.GetValue<string>());
        // The top five usable words (wordsPerMask defaults to 5) are the three favoured ones and two
        // of the near-zero-bias rest; the initial filler "the" may stay where no proposal lowers the loss.
        var words = report["images"]!.AsArray().SelectMany(i => i!["triggers"]!.AsArray()).SelectMany(t => t!.GetValue<string>().Split(' ')).ToHashSet();
        Assert.Contains(words, w => w is "bright" or "quiet" or "river");
        Assert.All(words, w => Assert.True(TinyBert.Pieces.Contains(w), $"'{w}' was not proposed"));
    }
}
