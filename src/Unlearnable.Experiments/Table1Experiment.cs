using System.Diagnostics;
using System.Text.Json;
using TorchSharp;
using Unlearnable.Clip.Checkpoints;
using Unlearnable.Clip.Model;
using Unlearnable.Clip.Runtime;
using Unlearnable.Data;
using Unlearnable.Imaging;
using Unlearnable.Protection;
using Unlearnable.Training;
using static TorchSharp.torch;

namespace Unlearnable.Experiments;

/// <param name="Countermeasure">The hacker's preprocessing of every training image before training (robustness arm), or null.</param>
public sealed record Table1Settings(ClipConfig Architecture, TrainingOptions Hacker, ProtectionOptions Protection, IReadOnlyList<string> Methods, Countermeasure? Countermeasure = null)
{
    public static readonly string[] AllMethods = ["clean", "random", "em", "uap", "mem-3", "mem-5"];
}

/// <summary>One row of Table 1: the hacker's clean-test retrieval after training on data protected by one method.</summary>
public sealed record MethodRow(string Method, RetrievalScores I2T, RetrievalScores T2I, List<double> EpochLoss, List<double> EpochI2TMedR,
    List<double> EpochT2IMedR, double ProtectSeconds, double TrainSeconds, double MaxLInfinity, double MeanPsnr, double? DictionaryShare, List<double> ProtectionRoundLosses);

/// <summary>
/// The paper's main experiment: for each method, protect the training split, train a hacker
/// CLIP from scratch on it, and evaluate on the clean test split after every epoch. Each
/// finished row is saved, so a rerun skips what is done and a protection resumes mid-run.
/// </summary>
public sealed class Table1Experiment(CaptionDataset dataset, Table1Settings settings, Device device, string outDir)
{
    public Action<string>? Log { get; init; }
    public Action<string, StepProgress>? OnHackerStep { get; init; }
    public Action<string, ProtectionProgress>? OnProtection { get; init; }

    // Rows of unprotected arms carry PSNR = ∞.
    static readonly JsonSerializerOptions RowJson = new() { WriteIndented = true, NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals };

    string RowPath(string method) => Path.Combine(outDir, "rows", method + ".json");
    string WorkDir(string method) => Path.Combine(outDir, "work", method);
    string CleanHackerPath => Path.Combine(WorkDir("clean"), "hacker.safetensors");

    public IReadOnlyList<MethodRow> Run(CancellationToken cancel = default)
    {
        var train = dataset.Of(Split.Train);
        var test = dataset.Of(Split.Test);
        if (train.Count < 2 || test.Count < 2) throw new ArgumentException($"{dataset.Name} needs train and test splits (has {train.Count} train, {test.Count} test)");
        var unknown = settings.Methods.Except(Table1Settings.AllMethods).ToList();
        if (unknown.Count > 0) throw new ArgumentException($"unknown method(s) {string.Join(", ", unknown)}; known: {string.Join(", ", Table1Settings.AllMethods)}");
        if (settings.Methods.Contains("uap") && !settings.Methods.Contains("clean") && !File.Exists(CleanHackerPath))
            throw new ArgumentException("uap attacks the clean hacker model: include the clean method");
        var config = settings.Architecture;
        settings.Hacker.Validate();
        settings.Protection.Validate(config.Text.ContextLength);   // bad ε or steps fail now, not after the clean hacker has trained
        Directory.CreateDirectory(Path.Combine(outDir, "rows"));

        var rows = new List<MethodRow>();
        foreach (var method in Table1Settings.AllMethods.Where(settings.Methods.Contains))
        {
            if (File.Exists(RowPath(method)))
            {
                rows.Add(JsonSerializer.Deserialize<MethodRow>(File.ReadAllText(RowPath(method)), RowJson)!);
                Log?.Invoke($"{method}: done earlier, kept");
                continue;
            }
            rows.Add(RunMethod(method, train, test, cancel));
            File.WriteAllText(RowPath(method), JsonSerializer.Serialize(rows[^1], RowJson));
        }
        Table1Report.Write(outDir, settings, rows, test);
        return rows;
    }

    MethodRow RunMethod(string method, IReadOnlyList<CaptionedImage> train, IReadOnlyList<CaptionedImage> test, CancellationToken cancel)
    {
        var config = settings.Architecture;
        var clock = Stopwatch.StartNew();
        var (protectedTrain, reports, roundLosses) = Protect(method, config, train, cancel);
        var protectSeconds = clock.Elapsed.TotalSeconds;
        Log?.Invoke($"{method}: protection {protectSeconds:F0} s");
        if (settings.Countermeasure is { } countermeasure)
        {
            protectedTrain = Countermeasures.ApplyTo(protectedTrain, countermeasure);
            Log?.Invoke($"{method}: hacker applied {countermeasure} to every training image");
        }

        clock.Restart();
        TorchRuntime.Seed(settings.Hacker.Seed);
        using var hacker = new ClipModel(config);
        hacker.to(device);
        var testPixels = new ImageTensors(config.Vision.ImageSize);
        var losses = new List<double>();
        var i2t = new List<double>();
        var t2i = new List<double>();
        RetrievalReport? last = null;
        var trainer = new ClipTrainer(hacker, settings.Hacker, device)
        {
            OnStep = p => OnHackerStep?.Invoke(method, p),
            OnEpoch = e =>
            {
                last = Evaluator.Evaluate(hacker, test, testPixels, device);
                losses.Add(e.MeanLoss);
                i2t.Add(last.ImageToText.MedR);
                t2i.Add(last.TextToImage.MedR);
                Log?.Invoke($"{method}: epoch {e.Epoch} loss {e.MeanLoss:F3} test i2t MedR {last.ImageToText.MedR} t2i MedR {last.TextToImage.MedR}");
            },
        };
        trainer.Train(protectedTrain, new ImageTensors(config.Vision.ImageSize), cancel: cancel);
        if (method == "clean") ClipCheckpoint.Save(hacker, CleanHackerPath);
        var done = reports.Where(r => r.Protected).ToList();
        return new MethodRow(method, last!.ImageToText, last.TextToImage, losses, i2t, t2i, protectSeconds, clock.Elapsed.TotalSeconds,
            done.Count == 0 ? 0 : done.Max(r => r.LInfinity), done.Count == 0 ? double.PositiveInfinity : done.Average(r => r.Psnr),
            method.StartsWith("mem", StringComparison.Ordinal) ? EnglishWords.DictionaryShare(done.SelectMany(r => r.TriggerIds)) : null,
            roundLosses);
    }

    (IReadOnlyList<CaptionedImage>, IReadOnlyList<ProtectedImageReport>, List<double>) Protect(
        string method, ClipConfig config, IReadOnlyList<CaptionedImage> train, CancellationToken cancel)
    {
        if (method == "clean") return (train, [], []);
        var pixels = new ImageTensors(config.Vision.ImageSize);
        if (method == "random")
        {
            var noise = RandomNoise(train.Count, config.Vision.ImageSize);
            var (items, reports) = ProtectedDataset.Build(train, new ProtectionResult(noise, null, [], default, default, default), settings.Protection.Epsilon, seed: settings.Protection.Seed);
            noise.Dispose();
            return (items, reports, []);
        }
        var options = settings.Protection with
        {
            Method = method switch { "em" => ProtectionMethod.Em, "uap" => ProtectionMethod.Uap, _ => ProtectionMethod.Mem },
            TriggerLength = method == "mem-5" ? 5 : 3,
        };
        TorchRuntime.Seed(options.Seed);
        using var surrogate = method == "uap" ? ClipCheckpoint.Load(CleanHackerPath, device) : new ClipModel(config);
        surrogate.to(device);
        var vocabulary = TriggerVocabulary.CommonWords;
        var run = new DatasetProtector(surrogate, train, pixels, options, vocabulary, device, WorkDir(method))
        {
            OnProgress = p => OnProtection?.Invoke(method, p),
        }.Run(cancel);
        var (published, reportsOut) = ProtectedDataset.Build(train, run, options.Epsilon, seed: options.Seed);
        run.Noise.Dispose();
        return (published, reportsOut, run.RoundLosses.ToList());
    }

    /// <summary>The paper's "random" row: uniform noise in [−ε, ε] per pixel, no trigger.</summary>
    NoiseStore RandomNoise(int count, int size)
    {
        var path = Path.Combine(WorkDir("random"), "noise.bin");
        if (File.Exists(path)) File.Delete(path);
        var store = NoiseStore.OpenOrCreate(path, count, size);
        int eps = (int)Math.Round(settings.Protection.Epsilon * 255);
        var rng = new Random(Seeds.For(SeedStream.RandomNoise, settings.Protection.Seed));
        for (int i = 0; i < count; i++)
        {
            var values = new float[3 * size * size];
            for (int j = 0; j < values.Length; j++) values[j] = rng.Next(-eps, eps + 1) / 255f;
            using var t = tensor(values, [1, 3, size, size]);
            store.Write([i], t);
        }
        store.Flush();
        return store;
    }
}
