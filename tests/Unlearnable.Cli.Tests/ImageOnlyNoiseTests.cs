using SkiaSharp;
using Unlearnable.Clip.Model;
using Unlearnable.Clip.Runtime;
using Unlearnable.Data;
using Unlearnable.Experiments;
using Unlearnable.Imaging;
using Unlearnable.Training;
using static TorchSharp.torch;

namespace Unlearnable.Cli.Tests;

public class ImageOnlyNoiseTests
{
    const double Epsilon = 8 / 255.0;

    // Three people, three photos each at model size: random pixels around a tone of the person's own (people look
    // different even to an untrained model), mid-tone, so no noise step is clipped at 0 or 1.
    static List<CaptionedImage> Photos(int people = 3, int each = 3) =>
        Enumerable.Range(0, people).SelectMany(p => Enumerable.Range(0, each).Select(n =>
            new CaptionedImage($"id{p:D3}-{n:D2}", new MemoryImage($"p{p}n{n}", RandomPng(64, 64, p * 100 + n, tone: (byte)(60 + 60 * p))),
                [$"a photo of Person {p}"], Split.Train, $"id{p:D3}"))).ToList();

    internal static byte[] RandomPng(int width, int height, int seed, byte tone = 128)
    {
        var rng = new Random(seed);
        byte Near(int centre) => (byte)Math.Clamp(centre + rng.Next(-40, 41), 16, 239);
        using var bitmap = new SKBitmap(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Unpremul));
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
                bitmap.SetPixel(x, y, new SKColor(Near(tone), Near(255 - tone), Near(128)));
        return ImageEncoding.Png(bitmap);
    }

    static ClipModel Surrogate()
    {
        TorchRuntime.Seed(3);
        var model = new ClipModel(ClipPresets.Get("tiny"));
        model.eval();
        return model;
    }

    [Fact]
    public void APersonsPatternIsTheSameOnEachOfTheirPhotosFillsEpsilonAndDiffersBetweenPeople()
    {
        var photos = Photos();
        using var model = Surrogate();
        var result = new ImageOnlyNoise(model, Epsilon, CPU).Make(photos, ImageOnlyKind.Pattern, seed: 5, TestFolders.New() + "-noise.bin");
        using var noise = result.Noise;
        using var all = noise.Read(Enumerable.Range(0, photos.Count).ToList(), CPU);
        Assert.Equal(8f / 255, all.abs().min().item<float>(), 1e-6f);
        Assert.Equal(8f / 255, all.abs().max().item<float>(), 1e-6f);
        for (int p = 0; p < 3; p++)
            for (int n = 1; n < 3; n++) Assert.True(Tensors.Same(all[p * 3], all[p * 3 + n]), $"person {p}'s photo {n} has another pattern");
        Assert.False(Tensors.Same(all[0], all[3]));
        Assert.False(Tensors.Same(all[3], all[6]));
        // The pattern is blocks of 8 pixels: constant inside a block, not across blocks.
        Assert.True(Tensors.Same(all[0, .., 0, 0], all[0, .., 7, 7]));
        Assert.False(Tensors.Same(all[0], all[0, .., 0, 0].reshape(3, 1, 1).expand_as(all[0])));

        // The seed draws the patterns: the same seed gives the same noise, another seed other noise.
        using var again = new ImageOnlyNoise(model, Epsilon, CPU).Make(photos, ImageOnlyKind.Pattern, seed: 5, TestFolders.New() + "-noise.bin").Noise;
        using var other = new ImageOnlyNoise(model, Epsilon, CPU).Make(photos, ImageOnlyKind.Pattern, seed: 6, TestFolders.New() + "-noise.bin").Noise;
        using var first = noise.Read([0], CPU);
        Assert.True(Tensors.Same(first, again.Read([0], CPU)));
        Assert.False(Tensors.Same(first, other.Read([0], CPU)));
    }

    [Fact]
    public void TheCloakMovesEachPhotoTowardsThePersonLeastLikeItsOwnWithinEpsilon()
    {
        var photos = Photos();
        using var model = Surrogate();
        var probe = new ImageOnlyNoise(model, Epsilon, CPU) { CloakSteps = 10 };
        var pixels = new ImageTensors(64);
        var (personOf, people) = ImageOnlyNoise.Number(photos);
        Assert.Equal(3, people);
        using var centroids = probe.CloakTargets(photos, personOf, people, pixels);
        // The target is another person's centroid, the one least like the person's own.
        using var similarity = centroids.Self.matmul(centroids.Self.T);
        for (int p = 0; p < 3; p++)
        {
            int target = Enumerable.Range(0, 3).Single(q => Tensors.Same(centroids.Target[p], centroids.Self[q]));
            Assert.NotEqual(p, target);
            Assert.Equal(Enumerable.Range(0, 3).Where(q => q != p).MinBy(q => similarity[p, q].item<float>()), target);
        }

        var result = probe.Make(photos, ImageOnlyKind.Cloak, seed: 0, TestFolders.New() + "-noise.bin");
        using var noise = result.Noise;
        var indices = Enumerable.Range(0, photos.Count).ToList();
        using var delta = noise.Read(indices, CPU);
        Assert.InRange(delta.abs().max().item<float>(), 1f / 255, 8f / 255 + 1e-6f);
        using var clean = PixelSpace.Unnormalize(pixels.Batch(photos.Select(p => p.Image).ToList(), CPU));
        using var own = tensor(personOf.Select(p => (long)p).ToArray());
        using (no_grad())
        {
            using var before = probe.Features(clean);
            using var after = probe.Features(clean.add(delta).clamp(0, 1));
            using var target = centroids.Target.index_select(0, own);
            using var self = centroids.Self.index_select(0, own);
            // What the cloak descends: the margin of the target over the person's own centroid, for every photo.
            var margin = after.mul(target.sub(self)).sum(1).sub(before.mul(target.sub(self)).sum(1));
            Assert.True(margin.min().item<float>() > 0, $"a photo's margin towards its target shrank: {margin.min().item<float>()}");
            Assert.True(after.mul(target).sum(1).mean().item<float>() > before.mul(target).sum(1).mean().item<float>(), "the photos did not move towards their targets");
        }
    }

    [Fact]
    public void PhotosWithoutTheirPersonOrOnePersonAloneAreRefused()
    {
        using var model = Surrogate();
        var probe = new ImageOnlyNoise(model, Epsilon, CPU);
        var anonymous = Photos().Select(p => p with { Owner = null }).ToList();
        Assert.Contains("person", Assert.Throws<ArgumentException>(() => probe.Make(anonymous, ImageOnlyKind.Pattern, 0, TestFolders.New())).Message);
        Assert.Contains("at least 2 people", Assert.Throws<ArgumentException>(() => probe.Make(Photos(people: 1), ImageOnlyKind.Cloak, 0, TestFolders.New())).Message);
    }
}
