using Unlearnable.Tests;
using Unlearnable.Clip.Text;
using Unlearnable.Clip.Checkpoints;
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
    public void BFloat16ProductsProtectWithinEpsilonWithNoiseOfTheirOwn()
    {
        // Rounding the products moves the noise off float32's, but the step is the same: within ε, the same trigger length, mostly the same signs.
        var (a, b) = TwoReleases();
        var (clean, captions) = Batch(4);
        var options = new ProtectionOptions { TriggerLength = 2, TopK = 3, PgdSteps = 4, Seed = 1 };
        var exact = new BatchProtector([a, b], options, Words, CPU).Protect(clean, captions, rounds: 1);
        var rounded = new BatchProtector([a, b], options with { Precision = MatmulPrecision.Bfloat16 }, Words, CPU).Protect(clean, captions, rounds: 1);
        Assert.InRange(rounded.Delta.abs().max().item<float>(), 1e-6f, 8f / 255 + 1e-6f);
        Assert.All(rounded.Triggers, t => Assert.Equal(2, t.Length));
        Assert.False(Tensors.Same(rounded.Delta, exact.Delta), "bfloat16 products gave float32's noise: the precision never reached the round");
        // Most pixels step the way float32's do (77 % here after 4 steps; unrelated noise agrees on about a third).
        double agree = rounded.Delta.sign().eq(exact.Delta.sign()).to(ScalarType.Float32).mean().item<float>();
        Assert.True(agree > 0.6, $"only {agree:P0} of the noise's signs agree with float32's");
        var again = new BatchProtector([a, b], options, Words, CPU).Protect(clean, captions, rounds: 1);
        Assert.True(Tensors.Same(again.Delta, exact.Delta), "float32 protection changed after a bfloat16 one");
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

    [Fact]
    public void ADatasetRunAgainstAnEnsembleTrainsEveryMemberAndResumesMidEnsembleAsIfUninterrupted()
    {
        var items = SyntheticScenes.Generate(16, seed: 7, testImages: 0, size: 64).Items;
        var options = new ProtectionOptions
        {
            Rounds = 2, SurrogateSteps = 2, PgdSteps = 2, BatchSize = 8, TriggerLength = 1, TriggerRounds = 1, TopK = 2, Seed = 3, StopLoss = 0,
        };
        ProtectionResult Protect(string work, bool ensemble = true, CancellationToken cancel = default, Action<ProtectionProgress>? progress = null)
        {
            var (a, b) = TwoReleases();
            a.train();
            b.train();
            return new DatasetProtector(ensemble ? [a, b] : [a], items, new ImageTensors(64), options, Words, CPU, work) { OnProgress = progress }.Run(cancel);
        }

        var straightDir = Folder();
        var surrogateSteps = new List<(int Round, int Step, int Steps)>();
        using var straight = Protect(straightDir, progress: p => { if (p.Phase == "surrogate") surrogateSteps.Add((p.Round, p.Batch, p.Batches)); }).Noise;
        // Progress counts the members' steps together: 2 members × 2 steps in each of 2 rounds.
        Assert.Equal([(1, 1, 4), (1, 2, 4), (1, 3, 4), (1, 4, 4), (2, 1, 4), (2, 2, 4), (2, 3, 4), (2, 4, 4)], surrogateSteps);
        using (var first = ClipCheckpoint.Load(Path.Combine(straightDir, "surrogate.safetensors"), CPU))
        using (var second = ClipCheckpoint.Load(Path.Combine(straightDir, "surrogate-member1.safetensors"), CPU))
            Assert.Equal(("tiny", "tiny-vit"), (first.Config.Name, second.Config.Name));

        // Stopped after the first member's surrogate steps of round 2: the resumed run trains only the second.
        var resumedDir = Folder();
        using var cancel = new CancellationTokenSource();
        Assert.ThrowsAny<OperationCanceledException>(() =>
            Protect(resumedDir, cancel: cancel.Token, progress: p => { if (p is { Phase: "surrogate", Round: 2, Batch: 3 }) cancel.Cancel(); }).Noise.Dispose());
        Assert.Equal((1, false, 1), ProtectionRunState.Load(resumedDir)! is var state ? (state.Round, state.SurrogateDone, state.MembersTrained) : default);
        using var resumed = Protect(resumedDir).Noise;
        for (int i = 0; i < items.Count; i++) Assert.Equal(straight.ReadRaw(i), resumed.ReadRaw(i));

        // Its work folder belongs to the ensemble: resuming it with the first member alone is refused, not mixed.
        Assert.Contains("other options or surrogates", Assert.Throws<Unlearnable.Data.RunConflictException>(() => Protect(straightDir, ensemble: false)).Message);

        // The second member changes the noise: it is not the first member's alone.
        using var alone = Protect(Folder(), ensemble: false).Noise;
        Assert.Contains(Enumerable.Range(0, items.Count), i => !straight.ReadRaw(i).SequenceEqual(alone.ReadRaw(i)));
        Assert.All(Enumerable.Range(0, items.Count), i => Assert.InRange(straight.ReadRaw(i).Max(x => Math.Abs((int)x)), 1, 8));
    }

    static string Folder() => TestFolders.New();
}
