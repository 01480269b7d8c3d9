using SkiaSharp;

namespace Unlearnable.Imaging;

/// <summary>
/// Decodes untrusted JPEG/PNG/WebP/GIF/BMP bytes with Skia (and PGM, see <see cref="Pgm"/>). Byte size, format and pixel count
/// are checked from the header (SKCodec) before any pixel is decoded; the result is upright
/// (EXIF orientation applied) 8-bit RGBA, unpremultiplied.
/// </summary>
public static class SafeImageDecoder
{
    public static SKBitmap Decode(byte[] bytes, ImageLimits? limits = null, string what = "image")
    {
        limits ??= ImageLimits.Default;
        if (bytes.Length == 0) throw new ImageRejectedException($"{what} is empty (0 bytes).");
        if (bytes.Length > limits.MaxBytes)
            throw new ImageRejectedException($"{what} is {bytes.Length:N0} bytes; the limit is {limits.MaxBytes:N0}.");

        if (Pgm.Looks(bytes)) return Pgm.Decode(bytes, limits, what);

        using var data = SKData.CreateCopy(bytes);
        using var codec = SKCodec.Create(data)
            ?? throw new ImageRejectedException($"{what} is not a recognised image (JPEG, PNG, WebP, GIF or BMP expected).");
        var info = codec.Info;
        limits.CheckDimensions(info.Width, info.Height, what);

        if (limits.RefuseAnimation && Frames(codec, bytes) is > 1 and var frames)
            throw new ImageRejectedException($"{what} is animated ({frames} frames); only still images can be protected.");

        var target = new SKImageInfo(info.Width, info.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul, SKColorSpace.CreateSrgb());
        var bitmap = new SKBitmap(target);
        var result = codec.GetPixels(target, bitmap.GetPixels());
        if (result is not (SKCodecResult.Success or SKCodecResult.IncompleteInput))
        {
            bitmap.Dispose();
            throw new ImageRejectedException($"{what} could not be decoded ({result}).");
        }
        if (result == SKCodecResult.IncompleteInput)
        {
            bitmap.Dispose();
            throw new ImageRejectedException($"{what} is truncated: the {codec.EncodedFormat} data ends before the image does.");
        }
        return Orientation.Apply(bitmap, codec.EncodedOrigin);
    }

    static long Frames(SKCodec codec, byte[] bytes) =>
        codec.EncodedFormat == SKEncodedImageFormat.Png ? Math.Max(codec.FrameCount, PngFrames(bytes)) : codec.FrameCount;

    /// <summary>
    /// The frames an animated PNG declares (its acTL chunk, which comes before the image data), else 1. Skia reads an
    /// APNG as the still image it also holds and reports one frame.
    /// </summary>
    static long PngFrames(ReadOnlySpan<byte> png)
    {
        long at = 8;   // after the signature: chunks of length, type, data, CRC
        while (at + 8 <= png.Length)
        {
            long length = System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(png[(int)at..]);
            var type = png.Slice((int)at + 4, 4);
            if (type.SequenceEqual("IDAT"u8)) return 1;
            if (type.SequenceEqual("acTL"u8) && length >= 8 && at + 12 <= png.Length)
                return System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(png[((int)at + 8)..]);
            at += 12 + length;
        }
        return 1;
    }

    public static SKBitmap DecodeFile(string path, ImageLimits? limits = null)
    {
        limits ??= ImageLimits.Default;
        var length = new FileInfo(path).Length;
        if (length > limits.MaxBytes)
            throw new ImageRejectedException($"{path} is {length:N0} bytes; the limit is {limits.MaxBytes:N0}.");
        return Decode(File.ReadAllBytes(path), limits, path);
    }
}
