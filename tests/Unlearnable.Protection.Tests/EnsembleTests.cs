using Unlearnable.Clip.Text;
using Unlearnable.Clip.Model;
using Unlearnable.Clip.Runtime;
using Unlearnable.Data.Synthetic;
using Unlearnable.Protection;
using Unlearnable.Training;
using static TorchSharp.torch;

namespace Unlearnable.Protection.Tests;

/// <summary>Protection against several surrogates at once (issue 24's first slice): both MEM steps follow the members' mean loss.</summary>
public class EnsembleTests
{
    static readonly TriggerVocabulary Words = TriggerVocabulary.FromWords("w", ["apple", "river", "quiet", "seven", "purple", "window"]);

    static (ClipModel A, ClipModel B) TwoReleases()
    {
        TorchRuntime.Seed(41);
        var a = new ClipModel(ClipPresets.Get("tiny"));
        TorchRuntime.Seed(42);
        var b = new ClipModel(ClipPresets.Get("tiny-vit"));
        a.eval();
        b.eval();
        return (a, b);
    }

    static (Tensor Clean01, List<string> Captions) Batch(int n)
    {
        var posts = SyntheticScenes.Generate(n, seed: 5, testImages: 0, size: 64).Items;
        return (PixelSpace.Unnormalize(new ImageTensors(64).Batch(posts.Select(p => p.Image).ToList(), CPU)), posts.Select(p => p.Captions[0]).ToList());
    }

    [Fact]
    public void AnEnsemblesGradientIsTheMeanOfItsMembers()
    {
        var (a, b) = TwoReleases();
        var (clean, captions) = Batch(4);
        var ids = TextTensors.Batch(captions, a.Config.Text.ContextLength, CPU);
        var options = new ProtectionOptions();
        var (ga, la) = new NoiseOptimizer(a, options).LossGradient(clean, ids);
        var (gb, lb) = new NoiseOptimizer(b, options).LossGradient(clean, ids);
        var (gab, lab) = new NoiseOptimizer([a, b], options).LossGradient(clean, ids);

        Assert.Equal((la + lb) / 2, lab, 5);
        var expected = (ga + gb) / 2;
        Assert.True(expected.abs().max().item<float>() > 0);
        Assert.True((gab - expected).abs().max().item<float>() <= 1e-6 * expected.abs().max().item<float>() + 1e-9, "the ensemble's gradient strays from the members' mean");
        Assert.False(gab.allclose(ga, rtol: 1e-3, atol: 1e-9), "the second member changed nothing");
    }

    [Fact]
    public void AnEnsembleOfOneModelTwiceProtectsAsThatModelAlone()
    {
        // Mean of identical members = the member: the same noise and triggers as the single-model path, every byte.
        var (a, _) = TwoReleases();
        var (clean, captions) = Batch(5);
        var options = new ProtectionOptions { TriggerLength = 2, TopK = 3, PgdSteps = 3, Seed = 3 };
        var alone = new BatchProtector(a, options, Words, CPU).Protect(clean, captions, rounds: 2);
        var twice = new BatchProtector([a, a], options, Words, CPU).Protect(clean, captions, rounds: 2);
        Assert.Equal(alone.Triggers, twice.Triggers);
        Assert.True((alone.Delta - twice.Delta).abs().max().item<float>() <= 1e-6);
    }

    [Fact]
    public void AMixedEnsembleProtectsWithinEpsilonAndNeedsOneContextAndImageSize()
    {
        var (a, b) = TwoReleases();
        var (clean, captions) = Batch(4);
        var options = new ProtectionOptions { TriggerLength = 2, TopK = 3, PgdSteps = 2 };
        var result = new BatchProtector([a, b], options, Words, CPU).Protect(clean, captions, rounds: 1);
        Assert.InRange(result.Delta.abs().max().item<float>(), 1e-6f, 8f / 255 + 1e-6f);
        Assert.All(result.Triggers, t => Assert.Equal(2, t.Length));

        using var wide = new ClipModel(ClipPresets.Get("small"));
        var refused = Assert.ThrowsAny<ArgumentException>(() => new BatchProtector([a, wide], options, Words, CPU).Protect(clean, captions));
        Assert.Contains("ensemble", refused.Message);
    }
}
