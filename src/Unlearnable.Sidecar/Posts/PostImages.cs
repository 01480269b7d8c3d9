using SkiaSharp;
using Unlearnable.Contracts.V1;
using Unlearnable.Imaging;
using Unlearnable.Protection;

namespace Unlearnable.Sidecar.Posts;

/// <summary>A decoded, upright post image and its model-resolution view in [0, 1] (CHW).</summary>
public sealed class PreparedImage(SKBitmap upright, float[] pixels01) : IDisposable
{
    public SKBitmap Upright { get; } = upright;
    public float[] Pixels01 { get; } = pixels01;
    public void Dispose() => Upright.Dispose();
}

public sealed record EncodedImage(byte[] Bytes, ImageFormat Format, int LInfinity, double Psnr);

/// <summary>
/// The image side of a post: only JPEG, PNG or WebP; byte size, then format, pixel count and
/// frame count checked from the header before any pixel is decoded; EXIF orientation applied.
/// On the way out the model-resolution noise is mapped to full resolution, the image encoded
/// losslessly with no metadata, and the L∞ measured on the decoded output.
/// </summary>
public sealed class PostImages(LimitOptions limits, int modelSize)
{
    readonly ImageLimits _limits = new(limits.MaxImageBytes, limits.MaxImagePixels, limits.MaxImageSide) { RefuseAnimation = true };

    public PreparedImage Prepare(byte[] bytes)
    {
        if (bytes.Length > 0 && bytes.Length <= limits.MaxImageBytes && !IsJpegPngOrWebp(bytes))
            throw new ImageRejectedException("image is not JPEG, PNG or WebP (checked from its first bytes).");
        var upright = SafeImageDecoder.Decode(bytes, _limits);
        try
        {
            return new PreparedImage(upright, ClipPreprocess.ToChw01(upright, modelSize));
        }
        catch
        {
            upright.Dispose();
            throw;
        }
    }

    /// <param name="delta">[3, S, S] noise in 1/255 units, already within ε.</param>
    public EncodedImage Finish(PreparedImage image, sbyte[] delta, ImageFormat format)
    {
        using var protectedImage = NoiseMapping.Apply(image.Upright, delta, modelSize);
        var bytes = format == ImageFormat.WebpLossless ? ImageEncoding.WebpLossless(protectedImage) : ImageEncoding.Png(protectedImage);
        using var decoded = SafeImageDecoder.Decode(bytes, _limits, "protected image");
        var (linf, psnr) = PixelDifference.Compare(image.Upright, decoded);
        return new EncodedImage(bytes, format == ImageFormat.WebpLossless ? ImageFormat.WebpLossless : ImageFormat.Png, linf, psnr);
    }

    static bool IsJpegPngOrWebp(byte[] b) =>
        (b.Length >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF)
        || (b.Length >= 8 && b.AsSpan(0, 8).SequenceEqual((ReadOnlySpan<byte>)[0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]))
        || (b.Length >= 12 && b.AsSpan(0, 4).SequenceEqual("RIFF"u8) && b.AsSpan(8, 4).SequenceEqual("WEBP"u8));
}
