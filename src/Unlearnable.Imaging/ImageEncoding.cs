using SkiaSharp;

namespace Unlearnable.Imaging;

/// <summary>Lossless output only: PNG (no metadata is written by Skia's encoder).</summary>
public static class ImageEncoding
{
    public static byte[] Png(SKBitmap bitmap)
    {
        using var image = SKImage.FromBitmap(bitmap);
        using var data = image.Encode(SKEncodedImageFormat.Png, 100)
            ?? throw new InvalidOperationException("PNG encoding failed");
        return data.ToArray();
    }
}
