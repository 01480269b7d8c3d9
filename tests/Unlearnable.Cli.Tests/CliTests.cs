using System.Diagnostics;
using System.Text.Json.Nodes;
using Unlearnable.Clip.Model;
using Unlearnable.Clip.Text;
using static TorchSharp.torch;

namespace Unlearnable.Cli.Tests;

/// <summary>The command line as users run it: a separate process, its exit code, stdout and stderr.</summary>
[Trait("Kind", "Process")]
public class CliTests
{
    internal static (int Code, string Out, string Err) Run(params string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "unlearnable.dll"));
        foreach (var a in args) start.ArgumentList.Add(a);
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromMinutes(5))) { process.Kill(true); throw new TimeoutException(string.Join(' ', args)); }
        return (process.ExitCode, stdout.Result, stderr.Result);
    }

    static string Temp() => TestFolders.New();

    [Fact]
    public void TokenizePrintsTheGoldenIdsOnOneLine()
    {
        var (code, output, _) = Run("tokenize", "a photo of a cat");
        Assert.Equal(0, code);
        Assert.Equal("49406 320 1125 539 320 2368 49407", output.Trim());
    }

    [Fact]
    public void DemoProtectsPostsLetsAHackerFineTuneOnBothAndWritesTheReportWithCharts()
    {
        var outDir = Temp();
        var (code, output, error) = Run("demo", "--people", "4", "--photos", "3", "--epochs", "1", "--pretrain-images", "8", "--hardening-steps", "2", "--out", outDir, "--device", "cpu");
        Assert.True(code == 0, error + output);
        Assert.Contains("after clean posts", output);
        Assert.Contains("after the platform's downscale and JPEG re-encode", output);
        Assert.Contains("random", output);
        foreach (var file in new[] { "report.md", "report.json", "i2t-hit10.png", "examples.png" }) Assert.True(File.Exists(Path.Combine(outDir, file)), file);
        var report = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "report.json")))!;
        Assert.Equal(["pre-trained", "clean", "protected", "protected + platform"], report["arms"]!.AsArray().Select(a => a!["name"]!.GetValue<string>()));
        Assert.Equal("posts", report["protection"]!["source"]!.GetValue<string>());
        Assert.InRange(report["protection"]!["maxLInfinity"]!.GetValue<int>(), 1, 8);
        Assert.Contains("posted", File.ReadAllText(Path.Combine(outDir, "report.md")), StringComparison.OrdinalIgnoreCase);
        // The sidecar's default surrogates, hardened for the steps asked.
        Assert.Contains("its default ensemble (tiny seed 0, tiny-vit seed 0); each surrogate first adversarially fine-tuned for 2 steps", report["protection"]!["posting"]!.GetValue<string>());

        (code, _, error) = Run("demo", "--people", "1");
        Assert.Equal(2, code);
        Assert.Contains("--people must be at least 2", error);
        (code, _, error) = Run("demo", "--people", "x");   // not a number: refused by the parser, not a crash
        Assert.Equal(2, code);
        Assert.Contains("'x'", error);
        (code, _, error) = Run("demo", "--hardening-steps", "-1");
        Assert.Equal(2, code);
        Assert.Contains("--hardening-steps must be 0 (none) to 10000", error);
    }

    [Fact]
    public void DatasetTrainEvaluateRoundTrip()
    {
        var data = Temp();
        var (code, output, error) = Run("dataset", "synthetic", "--out", data, "--images", "60", "--seed", "3", "--test", "20", "--size", "64");
        Assert.True(code == 0, error);
        Assert.Contains("60 images", output);
        Assert.Equal(60, File.ReadAllLines(Path.Combine(data, "captions.jsonl")).Length);

        // tiny-vit, not the default preset: evaluate must take the architecture from the checkpoint.
        var checkpoint = Path.Combine(Temp(), "tiny-vit.safetensors");
        (code, output, error) = Run("train", "--preset", "tiny-vit", "--data", data, "--epochs", "2", "--out", checkpoint, "--batch-size", "20", "--device", "cpu");
        Assert.True(code == 0, error + output);
        Assert.True(File.Exists(checkpoint));
        Assert.Contains("trained 2 epochs", output);

        // A second train into the same checkpoint must not silently overwrite it.
        (code, _, error) = Run("train", "--preset", "tiny-vit", "--data", data, "--epochs", "2", "--out", checkpoint, "--batch-size", "20");
        Assert.Equal(2, code);
        Assert.Contains("--resume", error);
        // Resuming it with other training options would mix two runs: the user's mistake (exit 2), not a crash.
        (code, _, error) = Run("train", "--preset", "tiny-vit", "--data", data, "--epochs", "3", "--out", checkpoint, "--batch-size", "10", "--resume");
        Assert.Equal(2, code);
        Assert.Contains("different training options", error);

        var json = Path.Combine(Temp(), "eval.json");
        (code, output, error) = Run("evaluate", "--checkpoint", checkpoint, "--data", data, "--split", "test", "--json", json);
        Assert.True(code == 0, error + output);
        var report = JsonNode.Parse(File.ReadAllText(json))!;
        Assert.Equal(20, report["images"]!.GetValue<int>());
        foreach (var direction in new[] { "i2t", "t2i" })
        {
            foreach (var key in new[] { "hit1", "hit5", "hit10", "medr" }) Assert.NotNull(report[direction]![key]);
            Assert.NotNull(report["random"]![direction]!["medr"]);
        }
        Assert.Equal(10, report["random"]!["t2i"]!["medr"]!.GetValue<double>()); // median of ranks 1..20 under chance
    }

    [Fact]
    public void TrainingStartsFromConfigLessWeights()
    {
        var data = Temp();
        var (code, _, error) = Run("dataset", "synthetic", "--out", data, "--images", "30", "--test", "10", "--size", "64");
        Assert.True(code == 0, error);
        using var source = new ClipModel(ClipPresets.Get("tiny"));
        var weights = Path.Combine(Temp(), "openai-style.safetensors");
        Directory.CreateDirectory(Path.GetDirectoryName(weights)!);
        Clip.Checkpoints.SafeTensors.Write(weights, source.state_dict().Select(kv => (kv.Key, kv.Value)));

        var checkpoint = Path.Combine(Temp(), "tuned.safetensors");
        (code, var output, error) = Run("train", "--init", weights, "--quick-gelu", "false", "--data", data, "--epochs", "1", "--out", checkpoint, "--batch-size", "10", "--device", "cpu");
        Assert.True(code == 0, error + output);
        Assert.Contains("model inferred-resnet", output);   // the architecture the weights' shapes tell, not a fresh preset
        using var tuned = Clip.Checkpoints.ClipCheckpoint.Load(checkpoint, CPU);
        Assert.Equal("inferred-resnet", tuned.Config.Name);
        Assert.False(tuned.Config.QuickGelu);
    }

    [Theory]
    [InlineData("unknown preset", "'huge'", "train", "--preset", "huge", "--data", "/tmp", "--out", "/tmp/x.safetensors")]
    [InlineData("bad activation", "'maybe'", "train", "--preset", "tiny", "--quick-gelu", "maybe", "--data", "/tmp", "--out", "/tmp/x.safetensors")]
    [InlineData("missing data", "data folder does not exist", "train", "--preset", "tiny", "--data", "/nonexistent/data", "--out", "/tmp/x.safetensors")]
    [InlineData("unknown device", "--device must be cpu, cuda, cuda:N or auto", "train", "--preset", "tiny", "--data", "/tmp", "--out", "/tmp/x.safetensors", "--device", "tpu")]
    [InlineData("missing checkpoint", "does not exist", "evaluate", "--checkpoint", "/nonexistent/model.safetensors", "--data", "/tmp")]
    [InlineData("bad epochs", "epochs must be at least 1", "train", "--preset", "tiny", "--data", "/tmp", "--out", "/tmp/x.safetensors", "--epochs", "0")]
    [InlineData("too many surrogates", "--members must be 1 to 8", "bench", "mem", "--preset", "tiny", "--members", "9")]
    [InlineData("too many with --also", "make 9 surrogates; give at most 8", "bench", "mem", "--preset", "tiny", "--members", "8", "--also", "tiny-vit")]
    public void BadInputsFailWithAClearMessage(string what, string expected, params string[] args)
    {
        var (code, _, error) = Run(args);
        Assert.True(code != 0, what);
        Assert.Contains(expected, error);
    }

    [Fact]
    public void BenchMemTimesBothPrecisionsAndSaysWhichRan()
    {
        // A fresh process: bfloat16 lifts oneDNN's cap before torch starts, so no warning that its kernels are off,
        // except on a CPU without them, which the warning names.
        foreach (var precision in new[] { "float32", "bfloat16" })
        {
            var (code, output, error) = Run("bench", "mem", "--preset", "tiny-vit", "--batch", "4", "--batches", "1", "--vocabulary", "common-words", "--precision", precision);
            Assert.True(code == 0, error + output);
            Assert.Contains($"{precision} products", output);
            Assert.Matches(@"[0-9.]+ protected posts/s", output);
            if (precision == "float32" || Clip.Runtime.TorchRuntime.CpuHasBFloat16) Assert.DoesNotContain("warning", error);
            else Assert.Contains("neither AVX-512 BF16 nor AMX", error);
        }
    }

    [Fact]
    public void BenchMemTimesTheTransferLeversAndSaysWhichRan()
    {
        var (code, output, error) = Run("bench", "mem", "--preset", "tiny", "--batch", "4", "--batches", "1", "--vocabulary", "common-words",
            "--members", "2", "--ensemble-step", "drawn", "--input-diversity", "0.5", "--skip-erosion", "0.2");
        Assert.True(code == 0, error + output);
        Assert.Contains("tiny × 2 members (one drawn per PGD step), input diversity 0.5, skip erosion 0.2 on", output);
        Assert.Matches(@"[0-9.]+ protected posts/s", output);
        // An ensemble across architectures, as the transfer study's ResNet + ViT; members that cannot share a batch are refused.
        (code, output, error) = Run("bench", "mem", "--preset", "tiny", "--also", "tiny-vit", "--batch", "4", "--batches", "1", "--vocabulary", "common-words");
        Assert.True(code == 0, error + output);
        Assert.Contains("tiny + tiny-vit on", output);
        Assert.Matches(@"[0-9.]+ protected posts/s", output);
        // Each architecture's model cost is on the page, not only the first member's.
        Assert.Matches(@"model FLOPs: tiny image [0-9.]+ G, a [0-9]+-token caption [0-9.]+ G; tiny-vit image [0-9.]+ G", output);
        (code, _, error) = Run("bench", "mem", "--preset", "tiny", "--also", "small", "--batch", "4", "--batches", "1");
        Assert.NotEqual(0, code);
        Assert.Contains("must read the same text context", error);
        (code, _, error) = Run("bench", "mem", "--preset", "tiny", "--input-diversity", "-1");
        Assert.Equal(2, code);
        Assert.Contains("--input-diversity must be in [0, 1]", error);
    }

    [Fact]
    public void CorruptDataFileNamesFileAndLine()
    {
        var data = Temp();
        Directory.CreateDirectory(data);
        File.WriteAllText(Path.Combine(data, "captions.jsonl"), "{\"image\": \"nope.png\", \"captions\": [\"x\"], \"split\": \"train\"}\n");
        var (code, _, error) = Run("train", "--preset", "tiny", "--data", data, "--out", Path.Combine(data, "m.safetensors"));
        Assert.Equal(2, code);
        Assert.Contains("captions.jsonl:1:", error);
    }

    [Fact]
    public void LongCaptionsAreTruncatedToTheContextKeepingEot()
    {
        // Not a CLI error: CLIP truncates; the row must still end in EOT so the feature is read at a real token.
        var row = ClipTokenizer.Default.Encode(string.Join(' ', Enumerable.Repeat("a red circle", 60)), 32);
        Assert.Equal(ClipTokenizer.EndOfText, row[31]);
        Assert.Equal(31, Array.IndexOf(row, ClipTokenizer.EndOfText));
    }
}
