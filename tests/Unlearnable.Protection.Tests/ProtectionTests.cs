using SkiaSharp;
using TorchSharp;
using Unlearnable.Clip.Checkpoints;
using Unlearnable.Clip.Model;
using Unlearnable.Clip.Runtime;
using Unlearnable.Clip.Text;
using Unlearnable.Data;
using Unlearnable.Data.Synthetic;
using Unlearnable.Imaging;
using Unlearnable.Protection;
using Unlearnable.Training;
using static TorchSharp.torch;

namespace Unlearnable.Protection.Tests;

public class ProtectionTests
{
    static string TempDir() => TestFolders.New();

    [Fact]
    public void PgdStepsProjectOntoTheEpsilonBallAndKeepPixelsValid()
    {
        const double eps = 8.0 / 255, alpha = 1.0 / 255;
        var clean = tensor(new float[] { 0f, 1f, 0.5f, 0.02f }, [1, 4]);
        var delta = tensor(new float[] { 0f, 0f, (float)eps, 0f }, [1, 4]);
        var gradient = tensor(new float[] { 1f, -1f, -1f, 1f }, [1, 4]);   // minimising moves against the gradient
        var next = Pgd.Step(delta, gradient, clean, eps, alpha, minimise: true).data<float>().ToArray();
        Assert.Equal(0f, next[0]);                         // 0 − α would leave [0, 1]: cut to 0
        Assert.Equal(0f, next[1]);                         // 1 + α would leave [0, 1]: cut to 0
        Assert.Equal((float)eps, next[2], 6);              // already at +ε: projected back
        Assert.Equal(-(float)alpha, next[3], 6);           // free pixel moves by exactly α
        var ascent = Pgd.Step(delta, gradient, clean, eps, alpha, minimise: false).data<float>().ToArray();
        Assert.Equal((float)alpha, ascent[0], 6);

        var d = zeros(1, 4);
        for (int i = 0; i < 50; i++) d = Pgd.Step(d, ones(1, 4), full(1, 4, 0.5f), eps, alpha, minimise: true);
        Assert.True(d.abs().max().item<float>() <= eps + 1e-6);
    }

    [Fact]
    public void TheShuffleKeepsEachSamplesTriggerOnAnotherCaption()
    {
        var triggers = new[] { new[] { 1001 }, new[] { 1002 }, new[] { 1003 }, new[] { 1004 } };
        var captions = new[] { "red circle", "blue square", "green star", "black ring" };
        var rows = TriggeredCaptions.Shuffled(triggers, captions, seed: 3, contextLength: 16, CPU).data<long>().ToArray();
        var permutation = TriggeredCaptions.Permutation(4, 3);
        Assert.NotEqual([0, 1, 2, 3], permutation);
        for (int i = 0; i < 4; i++)
        {
            var row = rows.Skip(i * 16).Take(16).Select(x => (int)x).ToArray();
            Assert.Equal(ClipTokenizer.StartOfText, row[0]);
            Assert.Equal(triggers[i][0], row[1]);
            Assert.Equal(captions[permutation[i]], ClipTokenizer.Default.Decode(row.Skip(2)));
        }
    }

    [Fact]
    public void HotFlipFindsTheTriggerThatMinimisesAKnownLoss()
    {
        // A known optimum: the "image" features are the text features of target-trigger ⊕ caption,
        // so each sample's loss is lowest with its own target word. With top-k covering the whole
        // vocabulary the search must land on the targets exactly.
        TorchRuntime.Seed(21);
        using var model = new ClipModel(ClipPresets.Get("tiny"));
        model.eval();
        var words = new[] { "apple", "river", "quiet", "seven", "purple", "window", "garden", "music" };
        var vocabulary = TriggerVocabulary.FromWords("test", words);
        var captions = new[] { "a red circle", "a blue square", "a green star", "a black ring", "a white cross", "a pink box" };
        var targets = Enumerable.Range(0, 6).Select(i => ClipTokenizer.Default.EncodeRaw(words[i]).ToArray()).ToList();
        Tensor imageFeatures;
        using (no_grad()) imageFeatures = model.EncodeText(TriggeredCaptions.Batch(targets, captions, model.Config.Text.ContextLength, CPU));
        var start = Enumerable.Range(0, 6).Select(_ => new[] { TriggerTable.TheToken }).ToList();

        var search = new TriggerSearch(model, vocabulary, topK: words.Length, beamWidth: 1, CPU);
        var found = search.Update(imageFeatures, captions, start);

        for (int i = 0; i < 6; i++) Assert.Equal(targets[i], found[i]);
        // Every candidate was scored (the unchanged trigger too), all of them in one forward after the gradient's.
        Assert.Equal(6 * (1 + words.Length + 1), search.TextRows);
        Assert.Equal(2, search.TextForwards);

        // With fewer candidates than words, every chosen token is still from the vocabulary (or the untouched start).
        var narrow = new TriggerSearch(model, vocabulary, topK: 2, beamWidth: 2, CPU).Update(imageFeatures, captions, start);
        Assert.All(narrow.SelectMany(t => t), token => Assert.True(vocabulary.Contains(token) || token == TriggerTable.TheToken));
    }

    [Fact]
    public void TheFullVocabularyHoldsOnlyPublishableWords()
    {
        var full = TriggerVocabulary.Full;
        Assert.DoesNotContain(ClipTokenizer.StartOfText, full.Tokens);
        Assert.DoesNotContain(ClipTokenizer.EndOfText, full.Tokens);
        Assert.True(full.Tokens.Count > 20_000, $"{full.Tokens.Count} tokens");
        var rng = new Random(1);
        foreach (var token in full.Tokens.OrderBy(_ => rng.Next()).Take(300))
        {
            var text = ClipTokenizer.Default.Decode([token]);
            Assert.Equal([token], ClipTokenizer.Default.EncodeRaw(text));
            Assert.DoesNotContain(text, c => char.IsControl(c) || char.IsWhiteSpace(c));
        }
        var words = TriggerVocabulary.FromWords("w", ["the", "photograph", "antidisestablishmentarianism", "", "two words"]);
        Assert.Contains(TriggerTable.TheToken, words.Tokens);
        Assert.Equal(2, words.Tokens.Count);   // multi-token words and phrases cannot be one trigger token
    }

    [Fact]
    public void CommonWordsAreSingleTokenDictionaryWords()
    {
        var common = TriggerVocabulary.CommonWords;
        Assert.InRange(common.Tokens.Count, 2000, 3000);
        Assert.Contains(TriggerTable.TheToken, common.Tokens);
        Assert.InRange(EnglishWords.DictionaryShare(common.Tokens.Select(t => new[] { t })), 0.9, 1.0);   // a few are names ("jay")
        Assert.DoesNotContain(ClipTokenizer.Default.EncodeRaw("fuck")[0], common.Tokens);
        var odd = ClipTokenizer.Default.EncodeRaw("zxq");
        Assert.Equal(0.5, EnglishWords.DictionaryShare([[TriggerTable.TheToken, odd[0]]]));
    }

    [Theory]
    [InlineData(0.0, 3, "ε must be")]
    [InlineData(-0.1, 3, "ε must be")]
    [InlineData(8.0 / 255, 0, "at least 1 token")]
    [InlineData(8.0 / 255, 40, "does not fit")]
    public void BadOptionsAreRefusedWithTheReason(double epsilon, int triggerLength, string expected)
    {
        var options = new ProtectionOptions { Epsilon = epsilon, TriggerLength = triggerLength };
        var e = Assert.ThrowsAny<ArgumentException>(() => options.Validate(contextLength: 32));
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void SettingsResolveFromChoiceThenStrengthThenBaseline()
    {
        var high = new ProtectionSettings { Strength = ProtectionStrength.High, Seed = 3 }.Resolve(ProtectionOptions.Evaluation);
        Assert.Equal((12.0 / 255, 12, Protection.Robustness.TransformSet.Platform), (high.Epsilon, high.PgdSteps, high.RobustTo));
        Assert.Equal((ProtectionOptions.EvaluationRounds, ProtectionOptions.EvaluationTopK, 3), (high.Rounds, high.TopK, high.Seed));

        var chosen = new ProtectionSettings { Strength = ProtectionStrength.High, Epsilon = 6, PgdSteps = 2, RobustTo = Protection.Robustness.TransformSet.None, TopK = 9 }
            .Resolve(ProtectionOptions.FromScratch);
        Assert.Equal((6.0 / 255, 2, Protection.Robustness.TransformSet.None, 9, 20), (chosen.Epsilon, chosen.PgdSteps, chosen.RobustTo, chosen.TopK, chosen.Rounds));

        // Nothing chosen: the baseline itself, every field.
        Assert.Equal(ProtectionOptions.FromScratch, new ProtectionSettings().Resolve(ProtectionOptions.FromScratch));
        Assert.Equal(ProtectionOptions.Evaluation, new ProtectionSettings().Resolve(ProtectionOptions.Evaluation));
        // The posts path is the strength level through the same resolution.
        var medium = StrengthLevel.Default(ProtectionStrength.Medium).PostOptions(8, triggerLength: 0, seed: 1);
        Assert.Equal((ProtectionMethod.Em, 8.0 / 255, Protection.Robustness.TransformSet.Platform), (medium.Method, medium.Epsilon, medium.RobustTo));
    }

    [Fact]
    public void NoiseStoreRoundTripsAndRefusesAnotherDataSet()
    {
        var path = Path.Combine(TempDir(), "noise.bin");
        using (var store = NoiseStore.OpenOrCreate(path, 3, 8))
        {
            var delta = (randint(-8, 9, [2, 3, 8, 8], generator: new Generator(2)).to_type(ScalarType.Float32) / 255f);
            store.Write([2, 0], delta);
            Assert.True(store.Read([2, 0], CPU).allclose(delta, atol: 1e-6));
            Assert.True(store.Read([1], CPU).eq(0).all().item<bool>());
        }
        using (var again = NoiseStore.OpenOrCreate(path, 3, 8)) Assert.NotEqual(0, again.ReadRaw(2).Max(x => Math.Abs((int)x)));
        Assert.Throws<InvalidDataException>(() => NoiseStore.OpenOrCreate(path, 4, 8));
    }

    [Fact]
    public void NoiseMappedToFullResolutionStaysWithinEpsilonAfterEncoding()
    {
        using var original = new SKBitmap(new SKImageInfo(150, 100, SKColorType.Rgba8888, SKAlphaType.Unpremul));
        var rng = new Random(5);
        var pixels = original.GetPixelSpan();
        for (int i = 0; i < pixels.Length; i++) pixels[i] = i % 4 == 3 ? (byte)255 : (byte)rng.Next(256);
        var delta = Enumerable.Range(0, 3 * 32 * 32).Select(_ => (sbyte)rng.Next(-8, 9)).ToArray();
        using var protectedImage = NoiseMapping.Apply(original, delta, 32);
        using var decoded = SafeImageDecoder.Decode(ImageEncoding.Png(protectedImage));
        Assert.InRange(PixelDifference.LInfinity(original, decoded), 1, 8);
        Assert.Equal(original.GetPixel(10, 50), decoded.GetPixel(10, 50));   // outside the centre square the model saw
        Assert.True(PixelDifference.Psnr(original, decoded) > 30);
    }

    [Fact]
    public void AnInterruptedRunResumesWithoutLosingOrRepeatingWork()
    {
        var items = SyntheticScenes.Generate(24, seed: 6, testImages: 0, size: 64).Items;
        var options = new ProtectionOptions
        {
            Rounds = 2, SurrogateSteps = 2, PgdSteps = 2, BatchSize = 8, TriggerLength = 2, TriggerRounds = 1, TopK = 3, Seed = 4,
        };
        var vocabulary = TriggerVocabulary.FromWords("w", ["apple", "river", "quiet", "seven", "purple", "window"]);

        ProtectionResult Protect(string work, CancellationToken cancel = default, Action<ProtectionProgress>? progress = null)
        {
            TorchRuntime.Seed(8);
            var surrogate = new ClipModel(ClipPresets.Get("tiny"));
            return new DatasetProtector(surrogate, items, new ImageTensors(64), options, vocabulary, CPU, work) { OnProgress = progress }.Run(cancel);
        }

        var straightDir = TempDir();
        var straight = Protect(straightDir);
        Assert.Equal(2, straight.RoundLosses.Count);

        var resumedDir = TempDir();
        using var cancel = new CancellationTokenSource();
        Assert.ThrowsAny<OperationCanceledException>(() =>
            Protect(resumedDir, cancel.Token, p => { if (p.Phase == "noise" && p.Round == 1 && p.Batch == 2) cancel.Cancel(); }).Noise.Dispose());
        var state = ProtectionRunState.Load(resumedDir)!;
        Assert.Equal((0, 2), (state.Round, state.NextBatch));
        var resumed = Protect(resumedDir);

        for (int i = 0; i < items.Count; i++) Assert.Equal(straight.Noise.ReadRaw(i), resumed.Noise.ReadRaw(i));
        for (int i = 0; i < items.Count; i++)
            for (int c = 0; c < items[i].Captions.Count; c++) Assert.Equal(straight.Triggers!.Get(i, c), resumed.Triggers!.Get(i, c));
        Assert.True(Enumerable.Range(0, items.Count).All(i => straight.Noise.ReadRaw(i).Max(x => Math.Abs((int)x)) is > 0 and <= 8));
        straight.Noise.Dispose();
        resumed.Noise.Dispose();

        var (published, reports) = ProtectedDataset.Build(items, Protect(resumedDir), 8.0 / 255);
        Assert.All(reports, r => Assert.InRange(r.LInfinity, 0, 8));
        Assert.All(published, p => Assert.Equal(2, ClipTokenizer.Default.CountTokens(p.Captions[0]) - ClipTokenizer.Default.CountTokens(items.First(o => o.Id == p.Id).Captions[0])));
    }

    [Fact]
    public void ARestartedSurrogateStartsEveryRoundFromTheSameInitialWeights()
    {
        var items = SyntheticScenes.Generate(16, seed: 3, testImages: 0, size: 64).Items;
        var vocabulary = TriggerVocabulary.FromWords("w", ["apple", "river", "quiet", "seven"]);
        double DriftFromStart(bool restart)
        {
            var options = new ProtectionOptions
            {
                Rounds = 3, SurrogateSteps = 3, PgdSteps = 1, BatchSize = 8, TriggerLength = 1, TriggerRounds = 1, TopK = 2, Seed = 2,
                SurrogateLearningRate = 1e-3, StopLoss = 0, RestartSurrogate = restart,
            };
            var work = TempDir();
            TorchRuntime.Seed(6);
            using var surrogate = new ClipModel(ClipPresets.Get("tiny"));
            using var initial = new ClipModel(ClipPresets.Get("tiny"));
            initial.load_state_dict(surrogate.state_dict());
            new DatasetProtector(surrogate, items, new ImageTensors(64), options, vocabulary, CPU, work).Run().Noise.Dispose();
            using var last = ClipCheckpoint.Load(Path.Combine(work, "surrogate.safetensors"), CPU);
            return (last.TokenEmbeddingMatrix - initial.TokenEmbeddingMatrix).norm().item<float>();
        }

        double restarted = DriftFromStart(restart: true), continued = DriftFromStart(restart: false);
        // Restarted: the last round's 3 steps from the start. Continued: 9 steps in all.
        Assert.True(restarted > 0 && restarted < 0.8 * continued, $"drift from the initial weights: restarted {restarted:G3}, continued {continued:G3}");
    }

    [Fact]
    public void BatchLevelMemStaysWithinEpsilonAndNeverChangesTheWarmSurrogate()
    {
        TorchRuntime.Seed(30);
        using var surrogate = new ClipModel(ClipPresets.Get("tiny"));
        var before = surrogate.TokenEmbeddingMatrix.clone();
        var posts = SyntheticScenes.Generate(6, seed: 9, testImages: 0, size: 64).Items;
        var clean = PixelSpace.Unnormalize(new ImageTensors(64).Batch(posts.Select(p => p.Image).ToList(), CPU));
        var options = new ProtectionOptions { TriggerLength = 2, TopK = 3, PgdSteps = 3 };
        var result = new BatchProtector(surrogate, options, TriggerVocabulary.FromWords("w", ["apple", "river", "seven"]), CPU)
            .Protect(clean, posts.Select(p => p.Captions[0]).ToList(), rounds: 2, scratchSurrogateSteps: 2);

        Assert.True(result.Delta.abs().max().item<float>() <= 8f / 255 + 1e-6);
        Assert.True(result.Delta.abs().max().item<float>() > 0);
        Assert.True(((clean + result.Delta).min().item<float>() >= 0) && ((clean + result.Delta).max().item<float>() <= 1));
        Assert.All(result.Triggers, t => Assert.Equal(2, t.Length));
        Assert.True(double.IsFinite(result.Loss));
        Assert.True(result.SurrogateTime > TimeSpan.Zero && result.PgdTime > TimeSpan.Zero && result.TriggerTime > TimeSpan.Zero);
        Assert.True(before.eq(surrogate.TokenEmbeddingMatrix).all().item<bool>(), "scratch surrogate steps must not touch the shared model");
    }
    [Fact]
    public void AUsersPhotosShareTheirPatternWithinItsShareOfEpsilonAndAGreyPhotoGetsItsGreyPart()
    {
        TorchRuntime.Seed(31);
        using var surrogate = new ClipModel(ClipPresets.Get("tiny"));
        var posts = SyntheticScenes.Generate(6, seed: 10, testImages: 0, size: 64).Items;
        var clean = PixelSpace.Unnormalize(new ImageTensors(64).Batch(posts.Select(p => p.Image).ToList(), CPU));
        clean[1] = clean[1].mean([0], keepdim: true).expand(3, -1, -1).clone();   // the first user's second photo is grey
        const double share = 4.0 / 255;
        using var users = new UserNoise(zeros(2, 3, 64, 64), [0, 0, 0, 1, 1, -1], share);
        var options = new ProtectionOptions { TriggerLength = 2, TopK = 3, PgdSteps = 3 };
        var result = new BatchProtector(surrogate, options, TriggerVocabulary.FromWords("w", ["apple", "river", "seven"]), CPU)
            .Protect(clean, posts.Select(p => p.Captions[0]).ToList(), rounds: 2, users: users);

        var patterns = users.Patterns;
        Assert.True(patterns.abs().max().item<float>() <= share + 1e-6, "the pattern stays within the user share");
        Assert.True(patterns[0].abs().max().item<float>() > 0 && patterns[1].abs().max().item<float>() > 0, "both users' patterns were optimised");
        Assert.True(result.Delta.abs().max().item<float>() <= 8f / 255 + 1e-6);
        Assert.True((clean + result.Delta).min().item<float>() >= 0 && (clean + result.Delta).max().item<float>() <= 1);
        // Away from the pixel range's ends nothing is cut, so each colour photo's noise is its user's pattern plus at most the own share.
        var inside = clean.ge(8.0 / 255).logical_and(clean.le(1 - 8.0 / 255));
        foreach (var (sample, user) in new[] { (0, 0), (2, 0), (3, 1), (4, 1) })
        {
            var own = (result.Delta[sample] - patterns[user]).abs().masked_select(inside[sample]);
            Assert.True(own.max().item<float>() <= share + 1e-6, $"photo {sample}: its noise strays {own.max().item<float>() * 255:F2}/255 from its user's pattern");
        }
        Assert.True((result.Delta[5].abs().max().item<float>()) <= share + 1e-6, "a post without a user (an anchor) has only its own share");
        var grey = result.Delta[1];
        Assert.True(grey[0].eq(grey[1]).all().item<bool>() && grey[1].eq(grey[2]).all().item<bool>(), "a grey photo's noise is grey");
    }
    [Fact]
    public void DatasetLevelMemGivesEachOwnersPhotosTheirSharedPattern()
    {
        // Two owners of four scenes each: every photo's published noise is nearer its owner's pattern than the other owner's.
        // (Not within the own share of the final pattern: a photo is published with the pattern as it was at its last batch.)
        var items = SyntheticScenes.Generate(8, seed: 12, testImages: 0, size: 64).Items.Select((item, i) => item with { Owner = i < 4 ? "ada" : "bo" }).ToList();
        var options = new ProtectionOptions
        {
            Rounds = 2, SurrogateSteps = 1, PgdSteps = 3, BatchSize = 4, TriggerLength = 1, TriggerRounds = 1, TopK = 2, StopLoss = 0, UserShare = 0.5, Seed = 4,
        };
        Assert.Equal(4.0 / 255, options.UserBound, 9);
        var work = TempDir();
        TorchRuntime.Seed(8);
        using var surrogate = new ClipModel(ClipPresets.Get("tiny"));
        var result = new DatasetProtector(surrogate, items, new ImageTensors(64), options, TriggerVocabulary.FromWords("w", ["apple", "river"]), CPU, work).Run();
        using var noise = result.Noise;
        using var patterns = NoiseStore.OpenOrCreate(Path.Combine(work, "user-noise.bin"), 2, 64);
        using var pattern = patterns.Read([0, 1], CPU);
        using var published = noise.Read(Enumerable.Range(0, 8).ToList(), CPU);

        Assert.True(pattern.abs().max().item<float>() <= options.UserBound + 1e-6 && pattern[0].abs().max().item<float>() > 0 && pattern[1].abs().max().item<float>() > 0);
        Assert.True(published.abs().max().item<float>() <= 8f / 255 + 1e-6);
        for (int i = 0; i < 8; i++)
        {
            float mine = (published[i] - pattern[i < 4 ? 0 : 1]).abs().mean().item<float>(), theirs = (published[i] - pattern[i < 4 ? 1 : 0]).abs().mean().item<float>();
            Assert.True(mine < 0.8 * theirs, $"photo {i}: {mine * 255:F2}/255 from its owner's pattern on average, {theirs * 255:F2}/255 from the other's");
        }
        Assert.Throws<ArgumentOutOfRangeException>(() => (options with { UserShare = 1 }).Validate(32));
    }
}
