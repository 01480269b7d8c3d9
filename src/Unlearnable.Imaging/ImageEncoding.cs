using SkiaSharp;

namespace Unlearnable.Imaging;

/// <summary>Lossless output only: PNG or lossless WebP (Skia's encoders write no EXIF or other metadata).</summary>
public static class ImageEncoding
{
    public static byte[] Png(SKBitmap bitmap)
    {
        using var image = SKImage.FromBitmap(bitmap);
        using var data = image.Encode(SKEncodedImageFormat.Png, 100)
            ?? throw new InvalidOperationException("PNG encoding failed");
        return data.ToArray();
    }

    public static byte[] WebpLossless(SKBitmap bitmap)
    {
        using var pixels = bitmap.PeekPixels() ?? throw new InvalidOperationException("the bitmap has no pixels to encode");
        using var data = pixels.Encode(new SKWebpEncoderOptions(SKWebpEncoderCompression.Lossless, 100))
            ?? throw new InvalidOperationException("lossless WebP encoding failed");
        return data.ToArray();
    }
}
