using Grpc.Core;
using SkiaSharp;
using Unlearnable.Imaging;
using Unlearnable.Protection;

namespace Unlearnable.Sidecar.Posts;

/// <summary>A decoded, upright post image, its model-resolution view in [0, 1] (CHW), and the upload it came from.</summary>
public sealed class PreparedImage(SKBitmap upright, float[] pixels01, byte[] upload, OutputFormat uploadFormat) : IDisposable
{
    public SKBitmap Upright { get; } = upright;
    public float[] Pixels01 { get; } = pixels01;
    /// <summary>The bytes as uploaded: a JPEG answer at the upload's quality keeps their DCT coefficients.</summary>
    public byte[] Upload { get; } = upload;
    public OutputFormat UploadFormat { get; } = uploadFormat;
    public void Dispose() => Upright.Dispose();
}

/// <summary>
/// The image side of a post: only JPEG, PNG or WebP; byte size, then format, pixel count, aspect
/// ratio and frame count checked from the header before any pixel is decoded; EXIF orientation
/// applied. On the way out the model-resolution noise is mapped to full resolution and the answer
/// encoded with no metadata so that its decoded pixels are within ε of the upload's
/// (<see cref="BoundedEncoder"/>); output limits are separate from input limits.
/// </summary>
public sealed class PostImages(LimitOptions limits, int modelSize)
{
    readonly ImageLimits _limits = new(limits.MaxImageBytes, limits.MaxImagePixels, limits.MaxImageSide)
    {
        RefuseAnimation = true, MaxAspectRatio = limits.MaxAspectRatio,
    };

    /// <summary>
    /// The pixels decoding will make, from the header alone (at most the limit: a larger image is refused before it
    /// is decoded); 0 where there is no header to read, which decoding then refuses.
    /// </summary>
    public long Pixels(byte[] bytes)
    {
        using var data = SKData.CreateCopy(bytes);
        using var codec = SKCodec.Create(data);
        return codec is null ? 0 : Math.Min((long)codec.Info.Width * codec.Info.Height, limits.MaxImagePixels);
    }

    public PreparedImage Prepare(byte[] bytes)
    {
        var format = ImageFormats.Sniff(bytes);
        if (bytes.Length > 0 && bytes.Length <= limits.MaxImageBytes && format is null)
            throw new ImageRejectedException("image is not JPEG, PNG or WebP (checked from its first bytes).");
        var upright = SafeImageDecoder.Decode(bytes, _limits);
        try
        {
            return new PreparedImage(upright, ClipPreprocess.ToChw01(upright, modelSize), bytes, format!.Value);
        }
        catch
        {
            upright.Dispose();
            throw;
        }
    }

    /// <param name="delta">[3, S, S] noise in 1/255 units, already within <paramref name="bound"/>.</param>
    public PublishedImage Finish(PreparedImage image, sbyte[] delta, OutputEncoding output, int bound)
    {
        using var perturbed = NoiseMapping.Apply(image.Upright, delta, modelSize);
        var published = BoundedEncoder.Encode(image.Upright, perturbed, output, bound, image.Upload);
        if (published.Bytes.Length > limits.MaxAnswerBytes)
            throw new RpcException(new Status(StatusCode.OutOfRange,
                $"the protected image is {published.Bytes.Length:N0} bytes as {published.Format}, above the {limits.MaxAnswerBytes:N0}-byte answer limit; ask for IMAGE_FORMAT_JPEG"));
        return published;
    }
}
