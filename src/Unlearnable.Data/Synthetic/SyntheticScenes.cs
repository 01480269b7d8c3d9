using Unlearnable.Imaging;

namespace Unlearnable.Data.Synthetic;

/// <summary>
/// The built-in captioned data set: scenes of one to three coloured shapes on a patterned
/// background, each with five captions. Image i depends only on (seed, i), so any subset is
/// reproducible and generation runs in parallel.
/// </summary>
public static class SyntheticScenes
{
    public static CaptionDataset Generate(int images, int seed, int? testImages = null, int size = 96)
    {
        if (images < 2) throw new ArgumentOutOfRangeException(nameof(images), images, "at least 2 images are needed (one to train, one to test)");
        if (size is < 16 or > 1024) throw new ArgumentOutOfRangeException(nameof(size), size, "image size must be 16..1024 pixels");
        int test = testImages ?? Math.Min(200, images / 5);
        if (test < 0 || test >= images) throw new ArgumentOutOfRangeException(nameof(testImages), test, $"test images must be 0..{images - 1}");

        var items = new CaptionedImage[images];
        Parallel.For(0, images, i =>
        {
            var rng = new Random(Seeds.For(SeedStream.SyntheticScene, seed, i));
            var scene = Compose(rng);
            using var bitmap = SceneRenderer.Render(scene, size, rng);
            var id = $"scene_{i:D6}";
            items[i] = new CaptionedImage(id, new MemoryImage(id, ImageEncoding.Png(bitmap)), SceneCaptions.Write(scene, rng),
                i >= images - test ? Split.Test : Split.Train);
        });
        return new CaptionDataset($"synthetic-scenes(seed {seed})", items);
    }

    public static Scene Compose(Random rng)
    {
        int count = 1 + rng.Next(3);
        var objects = new List<SceneObject>();
        var cells = Enumerable.Range(0, 9).OrderBy(_ => rng.Next()).Take(count).ToList();
        foreach (var cell in cells)
        {
            bool large = rng.Next(2) == 0;
            float radius = large ? 0.15f + 0.04f * rng.NextSingle() : 0.08f + 0.03f * rng.NextSingle();
            float x = Math.Clamp((cell % 3 + 0.5f) / 3 + (rng.NextSingle() - 0.5f) * 0.1f, radius, 1 - radius);
            float y = Math.Clamp((cell / 3 + 0.5f) / 3 + (rng.NextSingle() - 0.5f) * 0.1f, radius, 1 - radius);
            var shape = (Shape)rng.Next(Enum.GetValues<Shape>().Length);
            objects.Add(new SceneObject(shape, Palette.Objects[rng.Next(Palette.Objects.Length)], large, x, y, radius, rng.Next(-20, 21)));
        }
        return new Scene(Palette.Backgrounds[rng.Next(Palette.Backgrounds.Length)], (Pattern)rng.Next(4), objects);
    }
}
