using SkiaSharp;
using Unlearnable.Clip.Model;
using Unlearnable.Clip.Runtime;
using Unlearnable.Data.Synthetic;
using Unlearnable.Imaging;
using Unlearnable.Protection;
using Unlearnable.Protection.Robustness;
using Unlearnable.Training;
using static TorchSharp.torch;

namespace Unlearnable.Protection.Tests;

/// <summary>The platform transformations PGD optimises through, and what they buy.</summary>
public class RobustnessTests
{
    static bool Same(Tensor a, Tensor b) => a.eq(b).all().item<bool>();

    static Tensor Batch(IEnumerable<SKBitmap> images, int size)
    {
        var views = images.Select(b => ClipPreprocess.ToChw01(b, size)).ToList();
        return tensor(views.SelectMany(v => v).ToArray(), [views.Count, 3, size, size]);
    }

    static SKBitmap FromChw01(Tensor chw, int size)
    {
        var values = chw.contiguous().data<float>().ToArray();
        var bitmap = new SKBitmap(new SKImageInfo(size, size, SKColorType.Rgba8888, SKAlphaType.Unpremul));
        var p = bitmap.GetPixelSpan();
        for (int i = 0; i < size * size; i++)
        {
            for (int c = 0; c < 3; c++) p[i * 4 + c] = (byte)Math.Clamp(MathF.Round(values[c * size * size + i] * 255), 0, 255);
            p[i * 4 + 3] = 255;
        }
        return bitmap;
    }

    [Fact]
    public void TheQuantisationTablesAreLibjpegs()
    {
        using var photo = PhonePhoto.Render(64, 64);
        foreach (int quality in new[] { 30, 75, 92 })
        {
            var tables = JpegTables.Read(ImageEncoding.Jpeg(photo, quality))!;
            Assert.Equal(JpegStandard.ScaledTable(JpegStandard.Luminance, quality), tables.Table(0));
            Assert.Equal(JpegStandard.ScaledTable(JpegStandard.Chrominance, quality), tables.Table(1));
        }
    }

    [Theory]
    [InlineData(60)]
    [InlineData(90)]
    public void TheDifferentiableJpegIsCloseToARealEncodeAndPassesGradients(int quality)
    {
        var scenes = SyntheticScenes.Generate(4, seed: 2, testImages: 0, size: 64).Items;
        var bitmaps = scenes.Select(s => SafeImageDecoder.Decode(s.Image.ReadBytes())).ToList();
        var x = Batch(bitmaps, 64).requires_grad_(true);
        var simulated = DifferentiableJpeg.Apply(x, quality);
        var real = Batch(bitmaps.Select(b => SafeImageDecoder.Decode(ImageEncoding.Jpeg(b, quality))), 64);

        double toReal = (simulated - real).abs().mean().item<float>() * 255, jpegLoss = (x - real).abs().mean().item<float>() * 255;
        Assert.True(toReal < 0.5 * jpegLoss, $"simulated JPEG is {toReal:F2} levels from the real one; the real one is {jpegLoss:F2} from the input");
        simulated.sum().backward();
        Assert.True(x.grad!.abs().sum().item<float>() > 0);
        bitmaps.ForEach(b => b.Dispose());
    }

    [Fact]
    public void TransformDrawsRepeatPerStepAndNoneLeavesImagesAlone()
    {
        var x = rand(2, 3, 64, 64);
        Assert.Same(x, PlatformTransforms.Apply(TransformSet.None, x, seed: 1, step: 3));
        var outputs = Enumerable.Range(0, 8).Select(step => PlatformTransforms.Apply(TransformSet.Platform, x, seed: 1, step)).ToList();
        Assert.All(outputs, o => Assert.Equal(x.shape, o.shape));
        Assert.True(Same(outputs[5], PlatformTransforms.Apply(TransformSet.Platform, x, seed: 1, step: 5)));
        Assert.Contains(outputs, o => !Same(o, x));   // some draws transform
    }

    [Fact]
    public void AGreyPhotoGetsGreyNoiseAndAColourOneDoesNot()
    {
        TorchRuntime.Seed(4);
        using var model = new ClipModel(ClipPresets.Get("tiny"));
        using var grey = PhonePhoto.Render(96, 80, seed: 1, grey: true);
        using var colour = PhonePhoto.Render(96, 80, seed: 2);
        var scenes = SyntheticScenes.Generate(2, seed: 5, testImages: 0, size: 64).Items.Select(s => SafeImageDecoder.Decode(s.Image.ReadBytes())).ToList();
        var clean = Batch(new[] { grey, colour }.Concat(scenes), 64);
        var options = new ProtectionOptions { TriggerLength = 2, TopK = 3, PgdSteps = 4, RobustTo = TransformSet.Platform };
        var delta = new BatchProtector(model, options, TriggerVocabulary.CommonWords, CPU)
            .Protect(clean, ["a grey face", "a colour face", "a scene", "another scene"]).Delta;

        Assert.True(delta[0].abs().max().item<float>() > 0);
        Assert.True(Same(delta[0][0], delta[0][1]) && Same(delta[0][1], delta[0][2]), "the grey photo's noise differs between channels");
        Assert.False(Same(delta[1][0], delta[1][1]), "the colour photo's noise is grey");
        Assert.True(delta.abs().max().item<float>() <= 8f / 255 + 1e-6);
        scenes.ForEach(s => s.Dispose());
    }

    [Fact]
    public void NoiseOptimisedThroughPlatformTransformsKeepsMoreOfItselfThroughARealJpegReEncode()
    {
        // Noise for eight posts with and without the platform transformations; each protected post and its clean
        // original are then really JPEG-encoded at quality 70 at model size (the harsh case); the part of the difference
        // between the two re-encodes that still points along the noise says how much of it a platform passes on.
        TorchRuntime.Seed(12);
        using var model = new ClipModel(ClipPresets.Get("tiny"));
        var posts = SyntheticScenes.Generate(8, seed: 21, testImages: 0, size: 64).Items;
        var clean = PixelSpace.Unnormalize(new ImageTensors(64).Batch(posts.Select(p => p.Image).ToList(), CPU));
        var captions = posts.Select(p => p.Captions[0]).ToList();
        var cleanJpeg = ReEncoded(clean);

        double Survival(TransformSet robustTo)
        {
            var options = new ProtectionOptions { TriggerLength = 2, TopK = 4, PgdSteps = 10, RobustTo = robustTo, Seed = 3 };
            var delta = new BatchProtector(model, options, TriggerVocabulary.CommonWords, CPU).Protect(clean, captions, rounds: 3).Delta;
            var passedOn = ReEncoded(clean + delta) - cleanJpeg;
            return ((passedOn * delta).sum() / delta.square().sum()).item<float>();
        }

        double plain = Survival(TransformSet.None), robust = Survival(TransformSet.Platform);
        Assert.True(robust > plain + 0.05, $"share of the noise passed on by a JPEG at quality 70: {robust:P1} robust, {plain:P1} plain");
    }

    static Tensor ReEncoded(Tensor images01)
    {
        var bitmaps = Enumerable.Range(0, (int)images01.shape[0]).Select(i => FromChw01(images01[i], 64)).ToList();
        var result = Batch(bitmaps.Select(b => SafeImageDecoder.Decode(ImageEncoding.Jpeg(b, 70))), 64);
        bitmaps.ForEach(b => b.Dispose());
        return result;
    }
}
