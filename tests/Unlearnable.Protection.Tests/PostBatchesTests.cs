using Unlearnable.Clip.Model;
using Unlearnable.Clip.Runtime;
using Unlearnable.Data.Synthetic;
using Unlearnable.Training;
using static TorchSharp.torch;

namespace Unlearnable.Protection.Tests;

/// <summary>The sidecar's per-user settings on the posts path that attack jobs run in process.</summary>
public class PostBatchesTests
{
    static readonly TriggerVocabulary Words = TriggerVocabulary.FromWords("w", ["apple", "river", "quiet", "seven", "purple", "window", "garden", "copper"]);

    static ProtectionResult Post(bool sticky, int scratchSteps = 0)
    {
        // Three people, posting in turn, four posts a batch: each person's posts fall in several batches.
        var posts = SyntheticScenes.Generate(12, seed: 21, testImages: 0, size: 64).Items
            .Select((item, i) => item with { Owner = $"person{i % 3}" }).ToList();
        TorchRuntime.Seed(5);
        using var surrogate = new ClipModel(ClipPresets.Get("tiny"));
        surrogate.eval();
        var options = new ProtectionOptions { TriggerLength = 2, PgdSteps = 1, TopK = 4, Seed = 1 };
        return new PostBatches(surrogate, options, Words, CPU) { BatchSize = 4, Rounds = 1, StickyTriggers = sticky, ScratchSurrogateSteps = scratchSteps }
            .Protect(posts, new ImageTensors(64), TestFolders.New());
    }

    [Fact]
    public void StickyTriggersGiveEachPersonTheirFirstTriggerForEveryLaterPost()
    {
        var sticky = Post(sticky: true);
        for (int person = 0; person < 3; person++)
        {
            var first = sticky.Triggers!.Get(person, 0);
            for (int post = person + 3; post < 12; post += 3) Assert.Equal(first, sticky.Triggers.Get(post, 0));
        }
        sticky.Noise.Dispose();

        // Per post (the default), the search finds each post its own: the same person's posts do not all share one.
        var perPost = Post(sticky: false);
        Assert.Contains(Enumerable.Range(3, 9), post => !perPost.Triggers!.Get(post, 0).SequenceEqual(perPost.Triggers.Get(post % 3, 0)));
        perPost.Noise.Dispose();
    }

    [Fact]
    public void OnePersonsPostsStillFormContrastiveBatchesWithStickyTriggers()
    {
        // Every post is one person's: the first batch takes company while their trigger is decided, the rest reuse it.
        var posts = SyntheticScenes.Generate(6, seed: 22, testImages: 0, size: 64).Items.Select(item => item with { Owner = "solo" }).ToList();
        TorchRuntime.Seed(5);
        using var surrogate = new ClipModel(ClipPresets.Get("tiny"));
        surrogate.eval();
        var options = new ProtectionOptions { TriggerLength = 2, PgdSteps = 1, TopK = 4, Seed = 1 };
        var run = new PostBatches(surrogate, options, Words, CPU) { BatchSize = 4, Rounds = 1, StickyTriggers = true }
            .Protect(posts, new ImageTensors(64), TestFolders.New());
        for (int post = 2; post < 6; post++) Assert.Equal(run.Triggers!.Get(0, 0), run.Triggers.Get(post, 0));
        run.Noise.Dispose();
    }

    [Fact]
    public void ScratchSurrogateStepsChangeTheNoiseAndKeepItWithinEpsilon()
    {
        using var plain = Post(sticky: false).Noise;
        using var stepped = Post(sticky: false, scratchSteps: 3).Noise;
        Assert.Contains(Enumerable.Range(0, 12), i => !plain.ReadRaw(i).SequenceEqual(stepped.ReadRaw(i)));
        Assert.All(Enumerable.Range(0, 12), i => Assert.InRange(stepped.ReadRaw(i).Max(x => Math.Abs((int)x)), 1, 8));
    }
}
