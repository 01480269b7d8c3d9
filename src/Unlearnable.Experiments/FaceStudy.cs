using System.Text.Json;
using TorchSharp;
using Unlearnable.Clip.Checkpoints;
using Unlearnable.Clip.Model;
using Unlearnable.Clip.Runtime;
using Unlearnable.Data;
using Unlearnable.Data.Formats;
using Unlearnable.Data.Synthetic;
using Unlearnable.Data.Synthetic.Faces;
using Unlearnable.Protection;
using Unlearnable.Training;
using static TorchSharp.torch;

namespace Unlearnable.Experiments;

/// <summary>
/// The face-privacy case study's settings (paper §4.5, Table 5). Fine-tuning defaults to the
/// paper's 10 epochs; the protection to DESIGN.md's fine-tune setting (pre-trained surrogate,
/// 10 rounds × 50 surrogate steps, triggers in the first 2 rounds, top-k 6).
/// </summary>
public sealed record FaceStudySettings(string Preset, TrainingOptions PreTraining, int PreTrainingImages, TrainingOptions FineTuning,
    ProtectionOptions Protection, int Identities, int PhotosPerIdentity, string? IdentityFolder = null, string? PreTrained = null);

/// <summary>One arm: the model's face→name (i2t) and name→face (t2i) retrieval on held-out photos, per fine-tuning epoch.</summary>
public sealed record FaceArm(string Arm, RetrievalScores I2T, RetrievalScores T2I, List<double> EpochI2THit10, List<double> EpochLoss);

public sealed record FaceStudyReport(string Preset, int Identities, int TrainPhotos, int TestPhotos, RetrievalScores RandomI2T, RetrievalScores RandomT2I,
    List<FaceArm> Arms, double? DictionaryShare, double MaxLInfinity);

/// <summary>
/// Can a hacker fine-tune a pre-trained CLIP to recognise people from their posted photos? The
/// model is pre-trained on captioned scenes (image–text alignment, never these people), then
/// fine-tuned on photos captioned with invented names, clean or MEM-protected, and asked to
/// match each person's held-out photo to their name.
/// </summary>
public sealed class FaceStudy(FaceStudySettings settings, Device device, string outDir)
{
    public Action<string>? Log { get; init; }

    static readonly JsonSerializerOptions Json = new() { WriteIndented = true, NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals };

    public FaceStudyReport Run(CancellationToken cancel = default)
    {
        var config = ClipPresets.Get(settings.Preset);
        settings.FineTuning.Validate();
        settings.Protection.Validate(config.Text.ContextLength);
        Directory.CreateDirectory(outDir);
        int size = config.Vision.ImageSize;
        var people = settings.IdentityFolder is { } folder
            ? IdentityFolders.Load(folder)
            : SyntheticIdentities.Write(Path.Combine(outDir, "identities"), settings.Identities, settings.PhotosPerIdentity, settings.Protection.Seed, size);
        var faces = FaceCaptions.Build(people, settings.Protection.Seed);
        var (train, test) = (faces.Of(Split.Train), faces.Of(Split.Test));
        Log?.Invoke($"{people.Count} identities: {train.Count} training photos, {test.Count} held out");

        string preTrained = settings.PreTrained ?? Path.Combine(outDir, "pretrained.safetensors");
        if (!File.Exists(preTrained)) PreTrain(config, preTrained, cancel);

        var arms = new List<FaceArm>();
        RetrievalReport baseline;
        using (var model = ClipCheckpoint.Load(preTrained, device))
        {
            baseline = Evaluator.Evaluate(model, test, new ImageTensors(size), device);
            arms.Add(new FaceArm("pre-trained", baseline.ImageToText, baseline.TextToImage, [], []));
            Log?.Invoke($"pre-trained: face→name Hit@10 {baseline.ImageToText.Hit10:F1} %");
        }
        arms.Add(FineTune("fine-tuned on clean photos", preTrained, train, test, cancel));

        var protection = Protect(preTrained, train, cancel);
        arms.Add(FineTune("fine-tuned on MEM-protected photos", preTrained, protection.Published, test, cancel));

        var report = new FaceStudyReport(settings.Preset, people.Count, train.Count, test.Count, baseline.RandomImageToText, baseline.RandomTextToImage, arms,
            protection.DictionaryShare, protection.MaxLInfinity);
        File.WriteAllText(Path.Combine(outDir, "face-study.json"), JsonSerializer.Serialize(report, Json));
        FaceStudyReportWriter.Write(outDir, report);
        return report;
    }

    void PreTrain(ClipConfig config, string path, CancellationToken cancel)
    {
        var corpus = SyntheticScenes.Generate(settings.PreTrainingImages, settings.Protection.Seed + 1, testImages: 0, size: config.Vision.ImageSize).Items;
        Log?.Invoke($"pre-training {config.Name} on {corpus.Count} captioned scenes");
        TorchRuntime.Seed(settings.PreTraining.Seed);
        using var model = new ClipModel(config);
        model.to(device);
        new ClipTrainer(model, settings.PreTraining, device).Train(corpus, new ImageTensors(config.Vision.ImageSize), cancel: cancel);
        ClipCheckpoint.Save(model, path);
    }

    FaceArm FineTune(string arm, string preTrained, IReadOnlyList<CaptionedImage> train, IReadOnlyList<CaptionedImage> test, CancellationToken cancel)
    {
        TorchRuntime.Seed(settings.FineTuning.Seed);
        using var model = ClipCheckpoint.Load(preTrained, device);
        var pixels = new ImageTensors(model.Config.Vision.ImageSize);
        var hit10 = new List<double>();
        var losses = new List<double>();
        RetrievalReport? last = null;
        new ClipTrainer(model, settings.FineTuning, device)
        {
            OnEpoch = e =>
            {
                last = Evaluator.Evaluate(model, test, pixels, device);
                hit10.Add(last.ImageToText.Hit10);
                losses.Add(e.MeanLoss);
                Log?.Invoke($"{arm}: epoch {e.Epoch} loss {e.MeanLoss:F3} face→name Hit@10 {last.ImageToText.Hit10:F1} %");
            },
        }.Train(train, pixels, cancel: cancel);
        return new FaceArm(arm, last!.ImageToText, last.TextToImage, hit10, losses);
    }

    sealed record Protected(IReadOnlyList<CaptionedImage> Published, double? DictionaryShare, double MaxLInfinity);

    Protected Protect(string preTrained, IReadOnlyList<CaptionedImage> train, CancellationToken cancel)
    {
        TorchRuntime.Seed(settings.Protection.Seed);
        using var surrogate = ClipCheckpoint.Load(preTrained, device);
        var options = settings.Protection with { Method = ProtectionMethod.Mem };
        var run = new DatasetProtector(surrogate, train, new ImageTensors(surrogate.Config.Vision.ImageSize), options, TriggerVocabulary.CommonWords, device,
            Path.Combine(outDir, "work", "mem"))
        {
            OnProgress = p =>
            {
                if (p.Batch == p.Batches) Log?.Invoke($"protecting: round {p.Round}/{p.Rounds} {p.Phase} loss {p.Loss:F3}");
            },
        }.Run(cancel);
        var (published, reports) = ProtectedDataset.Build(train, run, seed: options.Seed);
        run.Noise.Dispose();
        var done = reports.Where(r => r.Protected).ToList();
        return new Protected(published, EnglishWords.DictionaryShare(done.SelectMany(r => r.TriggerIds)), done.Max(r => r.LInfinity));
    }
}
