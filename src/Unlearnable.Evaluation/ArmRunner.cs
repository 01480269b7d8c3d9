using System.Diagnostics;
using System.Text.Json;
using TorchSharp;
using Unlearnable.Clip.Checkpoints;
using Unlearnable.Clip.Model;
using Unlearnable.Data;
using Unlearnable.Training;

namespace Unlearnable.Evaluation;

/// <summary>
/// Trains one arm's hacker and scores it on the clean test split before training and after
/// every epoch. Model, optimiser and scores are saved after each epoch, so a crash or a cancel
/// costs at most the epoch in progress; a finished arm is read back instead of trained again.
/// </summary>
public sealed class ArmRunner(HackerSpec hacker, int seed, torch.Device device, string workDir)
{
    public Action<JobProgress>? OnProgress { get; init; }

    public string ArmDir(ArmPlan arm) => Path.Combine(workDir, "arms", arm.Slug);
    public string CheckpointPath(ArmPlan arm) => Path.Combine(ArmDir(arm), "hacker.safetensors");
    string ResultPath(ArmPlan arm) => Path.Combine(ArmDir(arm), "result.json");
    string HistoryPath(ArmPlan arm) => Path.Combine(ArmDir(arm), "epochs.json");

    public TrainingOptions Training => new()
    {
        Epochs = hacker.Epochs, BatchSize = hacker.BatchSize, LearningRate = hacker.LearningRate, WarmupSteps = hacker.WarmupSteps, Seed = seed,
    };

    public ArmResult? Finished(ArmPlan arm) =>
        File.Exists(ResultPath(arm)) ? JsonSerializer.Deserialize<ArmResult>(File.ReadAllText(ResultPath(arm)), AttackSpec.Json) : null;

    /// <param name="start">The model an arm starts from: pre-trained for fine-tuning, freshly initialised (seeded) from scratch.</param>
    public ArmResult Run(ArmPlan arm, int index, int count, HackerView train, IReadOnlyList<CaptionedImage> test,
        Func<ArmPlan, ClipModel> start, CancellationToken cancel)
    {
        if (Finished(arm) is { } done) return done;
        Directory.CreateDirectory(ArmDir(arm));
        var clock = Stopwatch.StartNew();
        var checkpoint = CheckpointPath(arm);
        bool resuming = File.Exists(ClipTrainer.StatePath(checkpoint));
        using var model = resuming ? ClipCheckpoint.Load(checkpoint, device) : start(arm);
        var pixels = new ImageTensors(model.Config.Vision.ImageSize);
        var history = File.Exists(HistoryPath(arm)) && resuming
            ? JsonSerializer.Deserialize<List<EpochScores>>(File.ReadAllText(HistoryPath(arm)), AttackSpec.Json)!
            : [];

        void Score(int epoch, double loss)
        {
            OnProgress?.Invoke(new JobProgress("evaluate", $"{arm.Name}: scoring epoch {epoch} on {test.Count} held-out images", 0, 0, arm.Name, index, count, epoch, hacker.Epochs, loss));
            var report = Evaluator.Evaluate(model, test, pixels, device);
            history.RemoveAll(h => h.Epoch == epoch);
            history.Add(new EpochScores(epoch, loss, report.ImageToText, report.TextToImage));
            WriteAtomically(HistoryPath(arm), JsonSerializer.Serialize(history, AttackSpec.Json));
            OnProgress?.Invoke(new JobProgress("evaluate",
                $"{arm.Name}: epoch {epoch}{(double.IsNaN(loss) ? " (before training)" : $" loss {loss:F3}")} image→text Hit@10 {report.ImageToText.Hit10:F1} % MedR {report.ImageToText.MedR:F1}",
                0, 0, arm.Name, index, count, epoch, hacker.Epochs, loss));
        }

        if (!resuming) Score(0, double.NaN);
        else
        {
            // The checkpoint is written before the epoch is scored: a crash in between leaves that one epoch to score now.
            var state = JsonSerializer.Deserialize<TrainingState>(File.ReadAllText(ClipTrainer.StatePath(checkpoint)))!;
            if (history.Count == 0 || history[^1].Epoch < state.EpochsDone) Score(state.EpochsDone, state.EpochLosses[^1]);
        }

        if (arm.Kind != ArmKinds.PreTrained)
        {
            new ClipTrainer(model, Training, device)
            {
                Augment = arm.Countermeasure is { } defence && HackerDefence.Parse(defence).Augment ? new ImageAugment(seed) : null,
                OnStep = p => OnProgress?.Invoke(new JobProgress("train", $"{arm.Name}: epoch {p.Epoch}/{p.Epochs} step {p.Step}/{p.StepsPerEpoch} loss {p.Loss:F3}",
                    p.Step, p.StepsPerEpoch, arm.Name, index, count, p.Epoch, p.Epochs, p.Loss)),
                OnEpoch = e => Score(e.Epoch, e.MeanLoss),
            }.Train(train.Items, pixels, checkpoint, cancel);
        }
        else if (!File.Exists(checkpoint)) ClipCheckpoint.Save(model, checkpoint);

        var last = history.OrderBy(h => h.Epoch).Last();
        var result = new ArmResult(arm.Name, arm.Kind, arm.Architecture, arm.Fraction, arm.Countermeasure,
            history.OrderBy(h => h.Epoch).ToList(), last.I2T, last.T2I, clock.Elapsed.TotalSeconds,
            arm.Kind == ArmKinds.PreTrained ? 0 : train.Items.Count, train.DroppedPairs, train.RewrittenCaptions, arm.Release);
        WriteAtomically(ResultPath(arm), JsonSerializer.Serialize(result, AttackSpec.Json));
        return result;
    }

    static void WriteAtomically(string path, string text)
    {
        File.WriteAllText(path + ".tmp", text);
        File.Move(path + ".tmp", path, overwrite: true);
    }
}

/// <summary>The training set as one arm's hacker learns from it, and what their defence did to it (null: that step was not taken).</summary>
public sealed record HackerView(IReadOnlyList<CaptionedImage> Items, int? DroppedPairs = null, int? RewrittenCaptions = null);
