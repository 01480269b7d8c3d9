using SkiaSharp;

namespace Unlearnable.Imaging;

public enum OutputFormat { Png, WebpLossless, Jpeg }

/// <summary>
/// Encoders for what is published. Skia's encoders write no EXIF or other metadata. A grey image
/// (every pixel R = G = B) is written as a one-channel PNG or JPEG, so it stays grey and smaller.
/// </summary>
public static class ImageEncoding
{
    public static byte[] Png(SKBitmap bitmap) => Encode(bitmap, pixels => pixels.Encode(new SKPngEncoderOptions(SKPngEncoderFilterFlags.AllFilters, 6)), "PNG");

    public static byte[] WebpLossless(SKBitmap bitmap) =>
        Encode(bitmap, pixels => pixels.Encode(new SKWebpEncoderOptions(SKWebpEncoderCompression.Lossless, 100)), "lossless WebP");

    /// <param name="fullChroma">4:4:4 instead of the 4:2:0 chroma subsampling that cameras and platforms use.</param>
    public static byte[] Jpeg(SKBitmap bitmap, int quality, bool fullChroma = false)
    {
        if (quality is < 1 or > 100) throw new ArgumentOutOfRangeException(nameof(quality), quality, "JPEG quality must be in 1..100");
        var options = new SKJpegEncoderOptions(quality, fullChroma ? SKJpegEncoderDownsample.Downsample444 : SKJpegEncoderDownsample.Downsample420, SKJpegEncoderAlphaOption.Ignore);
        return Encode(bitmap, pixels => pixels.Encode(options), "JPEG");
    }

    public static byte[] Encode(SKBitmap bitmap, OutputFormat format, int jpegQuality = OutputEncoding.DefaultJpegQuality) => format switch
    {
        OutputFormat.Jpeg => Jpeg(bitmap, jpegQuality),
        OutputFormat.WebpLossless => WebpLossless(bitmap),
        _ => Png(bitmap),
    };

    /// <summary>
    /// True when every pixel has R = G = B and is opaque (a grey photo, whatever its encoding stored). A grey image with
    /// transparency is not: a one-channel file has no alpha, and writing it as one would make hidden pixels visible.
    /// </summary>
    public static bool IsGrey(SKBitmap bitmap)
    {
        if (bitmap.ColorType == SKColorType.Gray8) return true;
        if (bitmap.ColorType is not (SKColorType.Rgba8888 or SKColorType.Bgra8888)) return false;
        var pixels = bitmap.GetPixelSpan();
        for (int p = 0; p < pixels.Length; p += 4)
            if (pixels[p] != pixels[p + 1] || pixels[p + 1] != pixels[p + 2] || pixels[p + 3] != 255) return false;
        return true;
    }

    /// <summary>A one-channel copy of a grey RGBA/BGRA bitmap (its first channel).</summary>
    public static SKBitmap ToGray8(SKBitmap grey)
    {
        var gray = new SKBitmap(new SKImageInfo(grey.Width, grey.Height, SKColorType.Gray8, SKAlphaType.Opaque));
        var from = grey.GetPixelSpan();
        var to = gray.GetPixelSpan();
        for (int i = 0; i < to.Length; i++) to[i] = from[i * 4];
        return gray;
    }

    static byte[] Encode(SKBitmap bitmap, Func<SKPixmap, SKData?> encode, string what)
    {
        using var grey = bitmap.ColorType != SKColorType.Gray8 && IsGrey(bitmap) ? ToGray8(bitmap) : null;
        using var pixels = (grey ?? bitmap).PeekPixels() ?? throw new InvalidOperationException("the bitmap has no pixels to encode");
        using var data = encode(pixels) ?? throw new InvalidOperationException($"{what} encoding failed");
        return data.ToArray();
    }
}
