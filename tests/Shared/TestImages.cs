using SkiaSharp;
using Unlearnable.Imaging;

namespace Unlearnable.Tests;

/// <summary>Real encoded images made with Skia for the tests.</summary>
static class TestImages
{
    public static byte[] Png(int width, int height, SKColor color)
    {
        using var bitmap = new SKBitmap(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Unpremul));
        bitmap.Erase(color);
        return ImageEncoding.Png(bitmap);
    }

    public static byte[] Jpeg(int width, int height, SKColor color)
    {
        using var bitmap = new SKBitmap(new SKImageInfo(width, height));
        bitmap.Erase(color);
        using var image = SKImage.FromBitmap(bitmap);
        using var data = image.Encode(SKEncodedImageFormat.Jpeg, 90);
        return data.ToArray();
    }

    public static string TempFolder()
    {
        var path = TestFolders.New();
        Directory.CreateDirectory(path);
        return path;
    }
}
