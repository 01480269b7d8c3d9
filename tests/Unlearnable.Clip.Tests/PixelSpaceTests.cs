using Unlearnable.Clip.Model;
using Unlearnable.Imaging;
using static TorchSharp.torch;

namespace Unlearnable.Clip.Tests;

public class PixelSpaceTests
{
    [Fact]
    public void TheModelReadsPixelsNormalisedAsTheImageLibraryPreparesThem()
    {
        // Two libraries hold CLIP's channel statistics (the image library does not depend on the model's): they must agree.
        Assert.Equal(ClipPreprocess.Mean, PixelSpace.Mean);
        Assert.Equal(ClipPreprocess.Std, PixelSpace.Std);

        using var bitmap = new SkiaSharp.SKBitmap(8, 8);
        bitmap.Erase(new SkiaSharp.SKColor(200, 100, 30));
        var normalised = tensor(ClipPreprocess.ToChw(bitmap, 8), [1, 3, 8, 8]);
        var pixels01 = tensor(ClipPreprocess.ToChw01(bitmap, 8), [1, 3, 8, 8]);
        Assert.True((PixelSpace.Normalize(pixels01) - normalised).abs().max().item<float>() < 1e-5);
        Assert.True((PixelSpace.Unnormalize(normalised) - pixels01).abs().max().item<float>() < 1e-6);
    }
}
