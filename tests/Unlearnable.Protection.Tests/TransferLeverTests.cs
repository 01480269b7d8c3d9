using Unlearnable.Tests;
using Unlearnable.Clip.Model;
using Unlearnable.Clip.Runtime;
using Unlearnable.Clip.Text;
using Unlearnable.Data.Synthetic;
using Unlearnable.Protection.Robustness;
using Unlearnable.Training;
using static TorchSharp.torch;

namespace Unlearnable.Protection.Tests;

/// <summary>The transfer levers of issue 24: one ensemble member drawn per PGD step, and input diversity (shrunk, padded views).</summary>
public class TransferLeverTests
{
    static (ClipModel A, ClipModel B) TwoMembers()
    {
        TorchRuntime.Seed(41);
        var a = new ClipModel(ClipPresets.Get("tiny"));
        TorchRuntime.Seed(42);
        var b = new ClipModel(ClipPresets.Get("tiny-vit"));
        return (a, b);
    }

    static (Tensor Clean01, Tensor Ids) Batch(int n, int context)
    {
        var posts = SyntheticScenes.Generate(n, seed: 5, testImages: 0, size: 64).Items;
        var clean = PixelSpace.Unnormalize(new ImageTensors(64).Batch(posts.Select(p => p.Image).ToList(), CPU));
        return (clean, TextTensors.Batch(posts.Select(p => p.Captions[0]).ToList(), context, CPU));
    }

    [Fact]
    public void ADrawnStepFollowsExactlyOneMemberAndTheMembersTakeTurns()
    {
        var (a, b) = TwoMembers();
        var (clean, ids) = Batch(4, a.Config.Text.ContextLength);
        var options = new ProtectionOptions { PgdSteps = 1, Seed = 7 };
        using var zero = zeros_like(clean);
        Tensor Step(IReadOnlyList<ClipModel> members, ProtectionOptions o, int offset) => new NoiseOptimizer(members, o).Run(clean, zero, _ => ids, minimise: true, offset).Delta;

        var drawn = new List<char>();
        for (int offset = 0; offset < 12; offset++)
        {
            var both = Step([a, b], options with { EnsembleStep = EnsembleStep.Drawn }, offset);
            bool isA = Tensors.Same(both, Step([a], options, offset)), isB = Tensors.Same(both, Step([b], options, offset));
            Assert.True(isA ^ isB, $"step {offset}: a drawn step must be one member's step, exactly");
            drawn.Add(isA ? 'a' : 'b');
            // The same step draws the same member again: runs repeat.
            Assert.True(Tensors.Same(both, Step([a, b], options with { EnsembleStep = EnsembleStep.Drawn }, offset)));
        }
        // Balanced: every two steps (two members) follow each member once.
        for (int cycle = 0; cycle < 6; cycle++) Assert.NotEqual(drawn[2 * cycle], drawn[2 * cycle + 1]);
        Assert.NotEqual(string.Concat(drawn), string.Concat(Enumerable.Repeat("ab", 6)));   // in drawn orders, not in turn
        // The mean step is neither member's alone.
        var mean = Step([a, b], options, 0);
        Assert.False(Tensors.Same(mean, Step([a], options, 0)) || Tensors.Same(mean, Step([b], options, 0)), "the mean step followed one member");
    }

    [Fact]
    public void InputDiversityShrinksAndPadsADrawnShareOfStepsAndRepeats()
    {
        TorchRuntime.Seed(3);
        using var images = rand(2, 3, 64, 48).mul(0.5).add(0.25);   // no black pixel of its own, not square
        Assert.Same(images, InputDiversity.Apply(images, 0, seed: 1, step: 0));

        int shrunk = 0;
        for (int step = 0; step < 200; step++)
        {
            using var scope = NewDisposeScope();   // a step left as it was returns the images themselves, which the scope does not own
            var view = InputDiversity.Apply(images, 0.5, seed: 1, step);
            Assert.Equal(images.shape, view.shape);
            double black = view.eq(0).to(ScalarType.Float32).mean().item<float>();
            if (black == 0) { Assert.Same(images, view); continue; }
            shrunk++;
            // Shrunk to 80–100 % a side: the padding is more than nothing and at most 1 − 0.8² of the frame (rounding aside).
            Assert.InRange(black, 1e-3, 1 - InputDiversity.MinScale * InputDiversity.MinScale + 0.03);
            Assert.True(Tensors.Same(view, InputDiversity.Apply(images, 0.5, seed: 1, step)), "a step's view must repeat");
        }
        Assert.InRange(shrunk, 70, 130);
        Assert.Equal(200, Enumerable.Range(0, 200).Count(step => InputDiversity.Apply(images, 1, seed: 2, step).eq(0).any().item<bool>()));
    }

    [Fact]
    public void NoiseMadeThroughShrunkViewsOrErodedSurrogatesStaysWithinEpsilonAndDiffers()
    {
        var (a, _) = TwoMembers();
        var (clean, ids) = Batch(4, a.Config.Text.ContextLength);
        var options = new ProtectionOptions { PgdSteps = 3, Seed = 1 };
        using var zero = zeros_like(clean);
        var plain = new NoiseOptimizer(a, options).Run(clean, zero, _ => ids, minimise: true).Delta;
        var (diverse, loss) = new NoiseOptimizer(a, options with { InputDiversity = 1 }).Run(clean, zero, _ => ids, minimise: true);
        Assert.True(double.IsFinite(loss));
        Assert.InRange(diverse.abs().max().item<float>(), 1f / 255 - 1e-6f, 8f / 255 + 1e-6f);
        Assert.False(Tensors.Same(plain, diverse), "input diversity never reached the PGD step");
        var (eroded, _) = new NoiseOptimizer(a, options with { SkipErosion = 0.2 }).Run(clean, zero, _ => ids, minimise: true);
        Assert.InRange(eroded.abs().max().item<float>(), 1f / 255 - 1e-6f, 8f / 255 + 1e-6f);
        Assert.False(Tensors.Same(plain, eroded), "skip erosion never reached the PGD step");
        Assert.True(Tensors.Same(eroded, new NoiseOptimizer(a, options with { SkipErosion = 0.2 }).Run(clean, zero, _ => ids, minimise: true).Delta), "an eroded run must repeat");
        Assert.Equal(nameof(ProtectionOptions.SkipErosion), Assert.Throws<ArgumentOutOfRangeException>(() => (options with { SkipErosion = 1 }).Validate(77)).ParamName);
        // Out of range is refused, naming the option.
        var refused = Assert.Throws<ArgumentOutOfRangeException>(() => (options with { InputDiversity = 1.5 }).Validate(77));
        Assert.Equal(nameof(ProtectionOptions.InputDiversity), refused.ParamName);
        Assert.Equal(nameof(ProtectionOptions.EnsembleStep), Assert.Throws<ArgumentOutOfRangeException>(() => (options with { EnsembleStep = (EnsembleStep)5 }).Validate(77)).ParamName);
    }
}
