using Unlearnable.Data.Synthetic;
using Unlearnable.Imaging;

namespace Unlearnable.Data.Tests;

public class SyntheticScenesTests
{
    [Fact]
    public void SameSeedGivesTheSameDataAndAnotherSeedDoesNot()
    {
        var a = SyntheticScenes.Generate(30, seed: 7);
        var b = SyntheticScenes.Generate(30, seed: 7);
        var c = SyntheticScenes.Generate(30, seed: 8);
        for (int i = 0; i < 30; i++)
        {
            Assert.Equal(a.Items[i].Captions, b.Items[i].Captions);
            Assert.Equal(a.Items[i].Image.ReadBytes(), b.Items[i].Image.ReadBytes());
        }
        Assert.True(Enumerable.Range(0, 30).Count(i => !a.Items[i].Captions.SequenceEqual(c.Items[i].Captions)) > 25);
    }

    [Fact]
    public void EveryImageHasFiveDistinctCaptionsAndDecodes()
    {
        var data = SyntheticScenes.Generate(50, seed: 1, testImages: 10, size: 64);
        Assert.Equal(40, data.Of(Split.Train).Count);
        Assert.Equal(10, data.Of(Split.Test).Count);
        foreach (var item in data.Items)
        {
            Assert.Equal(5, item.Captions.Count);
            Assert.Equal(5, item.Captions.Distinct().Count());
            Assert.All(item.Captions, c => Assert.False(string.IsNullOrWhiteSpace(c)));
            using var bitmap = SafeImageDecoder.Decode(item.Image.ReadBytes());
            Assert.Equal((64, 64), (bitmap.Width, bitmap.Height));
        }
    }

    [Fact]
    public void CaptionsDescribeTheSceneTheyBelongTo()
    {
        for (int seed = 0; seed < 40; seed++)
        {
            var rng = new Random(seed);
            var scene = SyntheticScenes.Compose(rng);
            var words = scene.Objects.SelectMany(o => new[] { o.Color.Name }).Append(scene.Background.Name).ToHashSet();
            foreach (var caption in SceneCaptions.Write(scene, rng))
                Assert.Contains(words, w => caption.Contains(w, StringComparison.Ordinal));
        }
    }

    [Fact]
    public void CaptionsAreDispersedAcrossTheSet()
    {
        var captions = SyntheticScenes.Generate(200, seed: 3).Items.SelectMany(i => i.Captions).ToList();
        Assert.True(captions.Distinct().Count() > 0.8 * captions.Count, "captions should rarely repeat word for word");
    }

    [Fact]
    public void RefusesImpossibleSizes()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => SyntheticScenes.Generate(1, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => SyntheticScenes.Generate(10, 0, testImages: 10));
        Assert.Throws<ArgumentOutOfRangeException>(() => SyntheticScenes.Generate(10, 0, size: 4));
    }
}
