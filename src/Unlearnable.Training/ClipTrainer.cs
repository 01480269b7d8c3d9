using Unlearnable.Clip.Text;
using System.Diagnostics;
using System.Text.Json;
using TorchSharp;
using TorchSharp.Modules;
using Unlearnable.Clip.Checkpoints;
using Unlearnable.Clip.Model;
using Unlearnable.Data;
using static TorchSharp.torch;

namespace Unlearnable.Training;

/// <summary>What a run has done so far; saved next to the checkpoint so a run can resume.</summary>
public sealed record TrainingState(int EpochsDone, long GlobalStep, TrainingOptions Options, List<double> EpochLosses);

/// <summary>
/// Trains a CLIP on image–caption pairs with the symmetric InfoNCE loss. Each epoch visits every
/// training image once with one of its captions (chosen by a seeded draw), in batches that
/// share out the remainder instead of dropping it. With a checkpoint path, model, optimiser and
/// <see cref="TrainingState"/> are written after every epoch and a rerun resumes from there.
/// </summary>
public sealed class ClipTrainer(ClipModel model, TrainingOptions options, Device device)
{
    public Action<StepProgress>? OnStep { get; init; }
    public Action<EpochResult>? OnEpoch { get; init; }
    /// <summary>Augmentation applied to every batch's images before the forward pass (a hacker's defence); null = none.</summary>
    public ImageAugment? Augment { get; init; }

    /// <summary>Steps whose loss or gradient was not finite and were therefore not applied.</summary>
    public int SkippedSteps { get; private set; }

    public TrainingState Train(IReadOnlyList<CaptionedImage> pairs, ImageTensors pixels, string? checkpoint = null, CancellationToken cancel = default)
    {
        options.Validate();
        if (pairs.Count < 2) throw new ArgumentException($"training needs at least 2 image–caption pairs, got {pairs.Count}");
        var batches = BatchSizes(pairs.Count, options.BatchSize);
        long totalSteps = (long)batches.Count * options.Epochs;

        using var optimizer = new ClipAdamW(model, options.LearningRate, options.WeightDecay, options.Beta1, options.Beta2, options.Epsilon);

        var state = new TrainingState(0, 0, options, []);
        if (checkpoint is not null && File.Exists(StatePath(checkpoint)))
        {
            state = JsonSerializer.Deserialize<TrainingState>(File.ReadAllText(StatePath(checkpoint)))
                ?? throw new InvalidDataException($"{StatePath(checkpoint)} is empty");
            if (state.Options with { Epochs = options.Epochs } != options with { Epochs = options.Epochs })
                throw new RunConflictException($"{StatePath(checkpoint)} was written with different training options; use a new --out or the same options.");
            // A finished run needs only its weights: its optimiser moments (as large again) may have been deleted to save space.
            if (state.EpochsDone < options.Epochs)
            {
                if (!File.Exists(OptimizerPath(checkpoint)))
                    throw new RunConflictException($"{OptimizerPath(checkpoint)} is missing, so training cannot resume after epoch {state.EpochsDone} of {options.Epochs}; use a new --out");
                optimizer.Load(OptimizerPath(checkpoint));
            }
        }

        model.train();
        long step = state.GlobalStep;
        var clock = Stopwatch.StartNew();
        for (int epoch = state.EpochsDone; epoch < options.Epochs; epoch++)
        {
            var epochClock = Stopwatch.StartNew();
            var rng = new Random(Seeds.For(SeedStream.TrainingOrder, options.Seed, epoch));
            var order = Enumerable.Range(0, pairs.Count).OrderBy(_ => rng.Next()).ToArray();
            var captionChoice = order.Select(i => rng.Next(pairs[i].Captions.Count)).ToArray();
            double lossSum = 0;
            int offset = 0;
            for (int b = 0; b < batches.Count; b++, step++)
            {
                cancel.ThrowIfCancellationRequested();
                var members = Enumerable.Range(offset, batches[b]).ToList();
                offset += batches[b];
                double lr = LearningRateSchedule.At(step, totalSteps, options.WarmupSteps, options.LearningRate);
                optimizer.LearningRate = lr;

                double loss = Step(optimizer,
                    members.Select(m => pairs[order[m]].Image).ToList(),
                    members.Select(m => pairs[order[m]].Captions[captionChoice[m]]).ToList(), pixels, epoch, b);
                lossSum += loss;
                OnStep?.Invoke(new StepProgress(epoch + 1, options.Epochs, b + 1, batches.Count, loss, lr, model.LogitScale.item<float>()));
            }
            state.EpochLosses.Add(lossSum / batches.Count);
            state = state with { EpochsDone = epoch + 1, GlobalStep = step };
            if (checkpoint is not null) Save(checkpoint, optimizer, state);
            OnEpoch?.Invoke(new EpochResult(epoch + 1, lossSum / batches.Count, epochClock.Elapsed));
        }
        return state;
    }

    double Step(ClipAdamW optimizer, IReadOnlyList<ImageSource> images, IReadOnlyList<string> captions, ImageTensors pixels, int epoch, int batch)
    {
        optimizer.ZeroGrad();
        double loss;
        using (NewDisposeScope())
        {
            var input = pixels.Batch(images, device);
            if (Augment is not null) input = Augment.Apply(input, epoch, batch);
            var logits = model.Logits(
                model.EncodeImage(input),
                model.EncodeText(TextTensors.Batch(captions, model.Config.Text.ContextLength, device)));
            var value = ContrastiveLoss.Compute(logits);
            value.backward();
            loss = value.item<float>();
        }
        if (!ClipOptimization.StepIfFinite(optimizer, model, loss)) SkippedSteps++;
        return loss;
    }

    void Save(string checkpoint, ClipAdamW optimizer, TrainingState state)
    {
        ClipCheckpoint.Save(model, checkpoint);
        optimizer.Save(OptimizerPath(checkpoint) + ".tmp");
        File.Move(OptimizerPath(checkpoint) + ".tmp", OptimizerPath(checkpoint), overwrite: true);
        File.WriteAllText(StatePath(checkpoint) + ".tmp", JsonSerializer.Serialize(state, new JsonSerializerOptions { WriteIndented = true }));
        File.Move(StatePath(checkpoint) + ".tmp", StatePath(checkpoint), overwrite: true);
    }

    public static string StatePath(string checkpoint) => checkpoint + ".state.json";
    public static string OptimizerPath(string checkpoint) => checkpoint + ".optim";

    /// <summary>Batch sizes covering n pairs: as many full batches as fit, the remainder spread over them.</summary>
    public static List<int> BatchSizes(int n, int batchSize)
    {
        int count = Math.Max(1, n / batchSize);
        return Enumerable.Range(0, count).Select(i => n / count + (i < n % count ? 1 : 0)).ToList();
    }
}
