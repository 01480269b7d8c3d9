using TorchSharp;
using Unlearnable.Clip.Checkpoints;
using Unlearnable.Clip.Model;
using Unlearnable.Clip.Runtime;
using Unlearnable.Data;
using Unlearnable.Data.Synthetic;
using Unlearnable.Training;
using static TorchSharp.torch;

namespace Unlearnable.Training.Tests;

public class TrainerTests
{
    static readonly IReadOnlyList<CaptionedImage> Pairs = SyntheticScenes.Generate(48, seed: 4, testImages: 0, size: 64).Items;
    static readonly TrainingOptions Options = new() { Epochs = 3, BatchSize = 16, WarmupSteps = 2, LearningRate = 1e-3, Seed = 9 };

    static (ClipModel Model, TrainingState State) Train(TrainingOptions options, string? checkpoint = null, ClipModel? model = null)
    {
        TorchRuntime.Seed(options.Seed);
        model ??= new ClipModel(ClipPresets.Get("tiny"));
        var state = new ClipTrainer(model, options, CPU).Train(Pairs, new ImageTensors(64), checkpoint);
        return (model, state);
    }

    static string TempCheckpoint() =>
        Path.Combine(TestFolders.New(), "run.safetensors");

    [Fact]
    public void LossFallsAndStaysFinite()
    {
        var (_, state) = Train(Options with { Epochs = 4 });
        Assert.All(state.EpochLosses, l => Assert.True(double.IsFinite(l)));
        Assert.True(state.EpochLosses[^1] < state.EpochLosses[0], string.Join(", ", state.EpochLosses));
    }

    [Fact]
    public void SameSeedTrainsTheSameModel()
    {
        var (a, sa) = Train(Options with { Epochs = 2 });
        var (b, sb) = Train(Options with { Epochs = 2 });
        Assert.Equal(sa.EpochLosses, sb.EpochLosses);
        Assert.True(a.TokenEmbeddingMatrix.eq(b.TokenEmbeddingMatrix).all().item<bool>());
    }

    [Fact]
    public void ACancelledRunResumesFromItsLastEpochAndMatchesAnUninterruptedOne()
    {
        var (straight, straightState) = Train(Options);

        var checkpoint = TempCheckpoint();
        using var cancel = new CancellationTokenSource();
        TorchRuntime.Seed(Options.Seed);
        var interrupted = new ClipTrainer(new ClipModel(ClipPresets.Get("tiny")), Options, CPU)
        {
            OnEpoch = e => { if (e.Epoch == 2) cancel.Cancel(); },
        };
        Assert.ThrowsAny<OperationCanceledException>(() => interrupted.Train(Pairs, new ImageTensors(64), checkpoint, cancel.Token));

        var (resumed, resumedState) = Train(Options, checkpoint, ClipCheckpoint.Load(checkpoint, CPU));
        Assert.Equal(3, resumedState.EpochsDone);
        for (int i = 0; i < 3; i++) Assert.Equal(straightState.EpochLosses[i], resumedState.EpochLosses[i], 4);
        Assert.True(straight.TokenEmbeddingMatrix.allclose(resumed.TokenEmbeddingMatrix, rtol: 1e-4, atol: 1e-6));
    }

    [Fact]
    public void ResumingWithOtherOptionsIsRefused()
    {
        var checkpoint = TempCheckpoint();
        Train(Options with { Epochs = 1 }, checkpoint);
        var e = Assert.Throws<RunConflictException>(() => Train(Options with { LearningRate = 2e-3 }, checkpoint, ClipCheckpoint.Load(checkpoint, CPU)));
        Assert.Contains("different training options", e.Message);
    }

    [Fact]
    public void AFinishedRunLoadsWithoutItsOptimiserButAnUnfinishedOneSaysItCannotResume()
    {
        // Finished: the weights and state are the model; the optimiser's moments were deleted to save space.
        var checkpoint = TempCheckpoint();
        var (trained, first) = Train(Options with { Epochs = 1 }, checkpoint);
        File.Delete(ClipTrainer.OptimizerPath(checkpoint));
        var (reloaded, state) = Train(Options with { Epochs = 1 }, checkpoint, ClipCheckpoint.Load(checkpoint, CPU));
        Assert.Equal(1, state.EpochsDone);
        Assert.Equal(first.EpochLosses, state.EpochLosses);
        Assert.True(trained.TokenEmbeddingMatrix.eq(reloaded.TokenEmbeddingMatrix).all().item<bool>());

        // Asked for more epochs, it would need the moments: refused, saying why, not a bare "file not found".
        var e = Assert.Throws<RunConflictException>(() => Train(Options with { Epochs = 2 }, checkpoint, ClipCheckpoint.Load(checkpoint, CPU)));
        Assert.Contains(".optim is missing", e.Message);
        Assert.Contains("after epoch 1 of 2", e.Message);
    }

    [Fact]
    public void InvalidOptionsAreRefusedBeforeTraining()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => (Options with { BatchSize = 1 }).Validate());
        Assert.Throws<ArgumentOutOfRangeException>(() => (Options with { Epochs = 0 }).Validate());
        Assert.Throws<ArgumentOutOfRangeException>(() => (Options with { LearningRate = -1 }).Validate());
    }

    [Fact]
    public void EvaluationOfALearnedModelBeatsRandom()
    {
        var (model, _) = Train(Options with { Epochs = 6 });
        var report = Evaluator.Evaluate(model, Pairs, new ImageTensors(64), CPU);
        Assert.Equal(48, report.Images);
        Assert.Equal(240, report.Captions);
        Assert.True(report.ImageToText.MedR < report.RandomImageToText.MedR,
            $"trained i2t MedR {report.ImageToText.MedR} vs random {report.RandomImageToText.MedR}");
    }

    [Fact]
    public void ANonFiniteGradientIsNeverApplied()
    {
        TorchRuntime.Seed(3);
        using var model = new ClipModel(ClipPresets.Get("tiny"));
        using var optimizer = new ClipAdamW(model, 1e-3, 0.2);
        var before = model.TokenEmbeddingMatrix.clone();
        foreach (var p in model.parameters()) p.grad = zeros_like(p);
        model.TokenEmbeddingMatrix.grad!.index_put_(float.NaN, [tensor(0L), tensor(0L)]);
        Assert.False(ClipOptimization.StepIfFinite(optimizer, model, loss: 1.0));
        Assert.True(before.eq(model.TokenEmbeddingMatrix).all().item<bool>());

        foreach (var p in model.parameters()) p.grad = ones_like(p);
        Assert.True(ClipOptimization.StepIfFinite(optimizer, model, loss: 1.0));
        Assert.False(before.eq(model.TokenEmbeddingMatrix).all().item<bool>());
        Assert.InRange(model.LogitScale.item<float>(), 0, Math.Log(100) + 1e-6);
    }

    [Fact]
    public void ClipAdamWMatchesTorchsAdamWStepForStep()
    {
        TorchRuntime.Seed(4);
        using var ours = new ClipModel(ClipPresets.Get("tiny"));
        using var reference = new ClipModel(ClipPresets.Get("tiny"));
        reference.load_state_dict(ours.state_dict());
        using var optimizer = new ClipAdamW(ours, 1e-2, 0.2);
        var (decay, noDecay) = reference.WeightDecayGroups();
        var torchAdamW = TorchSharp.torch.optim.AdamW(
            [new TorchSharp.Modules.AdamW.ParamGroup(decay, 1e-2, 0.9, 0.98, 1e-6, 0.2, false, false),
             new TorchSharp.Modules.AdamW.ParamGroup(noDecay, 1e-2, 0.9, 0.98, 1e-6, 0, false, false)], 1e-2);
        var saved = Path.Combine(TestFolders.New(), "adamw.optim");
        Directory.CreateDirectory(Path.GetDirectoryName(saved)!);
        for (int step = 0; step < 4; step++)
        {
            var grads = ours.parameters().Select(p => randn_like(p)).ToList();
            foreach (var (p, g) in ours.parameters().Zip(grads)) p.grad = g.clone();
            foreach (var (p, g) in reference.parameters().Zip(grads)) p.grad = g.clone();
            if (step == 2)
            {
                optimizer.Save(saved);   // a resumed optimiser continues exactly
                optimizer.LearningRate = 5e-3;
                using var resumed = new ClipAdamW(ours, 5e-3, 0.2);
                resumed.Load(saved);
                Assert.Equal(2, resumed.Steps);
                resumed.Step();
                optimizer.Dispose();
                foreach (var group in torchAdamW.ParamGroups) group.LearningRate = 5e-3;
                torchAdamW.step();
                break;
            }
            optimizer.Step();
            torchAdamW.step();
        }
        foreach (var ((name, a), b) in ours.named_parameters().Zip(reference.parameters()))
            Assert.True(a.allclose(b, rtol: 1e-4, atol: 1e-6), $"{name} differs from torch.optim.AdamW");
        Assert.False(ours.TokenEmbeddingMatrix.allclose(new ClipModel(ClipPresets.Get("tiny")).TokenEmbeddingMatrix));
    }
}
