using Unlearnable.Tests;
using Unlearnable.Clip.Model;
using Unlearnable.Clip.Runtime;
using Unlearnable.Clip.Text;
using Unlearnable.Data.Synthetic;
using Unlearnable.Protection.Robustness;
using Unlearnable.Training;
using static TorchSharp.torch;

namespace Unlearnable.Protection.Tests;

/// <summary>The hardening transfer lever: a surrogate briefly adversarially fine-tuned on its own public pairs.</summary>
public class HardeningTests
{
    static ClipModel Model()
    {
        TorchRuntime.Seed(11);
        var model = new ClipModel(ClipPresets.Get("tiny"));
        model.eval();
        return model;
    }

    // The mean contrastive loss on the pairs after the hardening's own adversary (same ε, fixed start and steps) has moved them.
    static double AttackedLoss(ClipModel model, AdversarialHardening settings, IReadOnlyList<Data.CaptionedImage> pairs)
    {
        using var scope = NewDisposeScope();
        var clean = PixelSpace.Unnormalize(new ImageTensors(64).Batch(pairs.Select(p => p.Image).ToList(), CPU));
        var ids = TextTensors.Batch(pairs.Select(p => p.Captions[0]).ToList(), model.Config.Text.ContextLength, CPU);
        var adversary = new NoiseOptimizer(model, new ProtectionOptions { Method = ProtectionMethod.Uap, Epsilon = settings.Epsilon, StepSize = settings.Epsilon / 2, PgdSteps = 5 });
        var (delta, _) = adversary.Run(clean, zeros_like(clean), _ => ids, minimise: false);
        model.eval();   // a batch-norm model in train mode would move its running statistics, and with them what hardening does next
        return new NoiseOptimizer(model, new ProtectionOptions()).LossGradient(clean.Plus(delta), ids).Loss;
    }

    [Fact]
    public void HardeningLowersTheLossUnderAttackAndRepeatsBySeed()
    {
        var pairs = SyntheticScenes.Generate(48, seed: 3, testImages: 0, size: 64).Items;
        var settings = new AdversarialHardening(Epsilon: 4.0 / 255, Steps: 12, BatchSize: 16, LearningRate: 1e-3, Seed: 5);
        using var hardened = Model();
        double before = AttackedLoss(hardened, settings, pairs);
        var losses = new List<double>();
        settings.Harden(hardened, pairs, new ImageTensors(64), CPU, (_, loss) => losses.Add(loss));
        Assert.Equal(settings.Steps, losses.Count);
        Assert.False(hardened.training, "a hardened surrogate is handed on in eval mode");
        double after = AttackedLoss(hardened, settings, pairs);
        Assert.True(after < before - 0.1, $"the loss under attack went {before:F3} → {after:F3}");

        using var again = Model();
        settings.Harden(again, pairs, new ImageTensors(64), CPU);
        Assert.True(SameWeights(hardened, again), "the same seed must give the same weights");
        using var other = Model();
        (settings with { Seed = 6 }).Harden(other, pairs, new ImageTensors(64), CPU);
        Assert.False(SameWeights(hardened, other), "another seed draws other batches and starts");
    }

    static bool SameWeights(ClipModel a, ClipModel b) => a.parameters().Zip(b.parameters()).All(p => Tensors.Same(p.First, p.Second));

    [Theory]
    [InlineData(0.0, 10, "Epsilon")]
    [InlineData(2.0, 10, "Epsilon")]
    [InlineData(0.01, 0, "Steps")]
    [InlineData(0.01, AdversarialHardening.MaxSteps + 1, "Steps")]
    public void BadSettingsAreRefusedNamingThem(double epsilon, int steps, string name)
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new AdversarialHardening(epsilon, steps).Validate());
        Assert.Equal(name, e.ParamName);
    }

    [Fact]
    public void ASettingMeansTheDefaultWhenUnsetNoneAtZeroAndReportsEvery25thStepAndTheLast()
    {
        Assert.Equal(new AdversarialHardening(2.0 / 255, AdversarialHardening.DefaultSteps, Seed: 3), AdversarialHardening.FromSetting(2, null, 3));
        Assert.Equal(new AdversarialHardening(1.0 / 255, 40, Seed: 0), AdversarialHardening.FromSetting(1, 40, 0));
        Assert.Null(AdversarialHardening.FromSetting(2, 0, 0));
        Assert.True(AdversarialHardening.IsStepsSetting(null));
        Assert.False(AdversarialHardening.IsStepsSetting(-1));
        Assert.Equal([24, 49, 59], Enumerable.Range(0, 60).Where(new AdversarialHardening(Steps: 60).IsReportStep));
    }
}
