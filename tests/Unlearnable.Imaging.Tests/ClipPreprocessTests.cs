using SkiaSharp;
using Unlearnable.Imaging;

namespace Unlearnable.Imaging.Tests;

public class ClipPreprocessTests
{
    [Fact]
    public void ResizesShorterSideAndCropsTheCentre()
    {
        // Left half red, right half blue, 200×100: the centre 100×100 crop (resized to 50) keeps both halves.
        using var bitmap = new SKBitmap(new SKImageInfo(200, 100, SKColorType.Rgba8888, SKAlphaType.Unpremul));
        using (var canvas = new SKCanvas(bitmap))
        {
            canvas.Clear(SKColors.Red);
            using var blue = new SKPaint { Color = SKColors.Blue };
            canvas.DrawRect(100, 0, 100, 100, blue);
        }
        using var square = ClipPreprocess.ResizeAndCrop(bitmap, 50);
        Assert.Equal((50, 50), (square.Width, square.Height));
        Assert.Equal(SKColors.Red, square.GetPixel(2, 25));
        Assert.Equal(SKColors.Blue, square.GetPixel(47, 25));
    }

    [Fact]
    public void NormalisesWithClipMeanAndStd()
    {
        using var grey = new SKBitmap(new SKImageInfo(16, 16, SKColorType.Rgba8888, SKAlphaType.Unpremul));
        grey.Erase(new SKColor(128, 128, 128));
        var chw = ClipPreprocess.ToChw(grey, 8);
        Assert.Equal(3 * 64, chw.Length);
        for (int c = 0; c < 3; c++)
            Assert.Equal((128 / 255f - ClipPreprocess.Mean[c]) / ClipPreprocess.Std[c], chw[c * 64 + 10], 4);
    }
}
