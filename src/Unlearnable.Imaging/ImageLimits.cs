namespace Unlearnable.Imaging;

/// <summary>Caps applied to untrusted images before any pixel is decoded.</summary>
public sealed record ImageLimits(long MaxBytes = 32L << 20, long MaxPixels = 50_000_000, int MaxSide = 16_384)
{
    /// <summary>Refuse images with more than one frame (animated GIF, PNG or WebP) instead of reading the first.</summary>
    public bool RefuseAnimation { get; init; }

    /// <summary>
    /// Longest side over shortest side. A 12000×1 strip passes every pixel cap but is no photo, and
    /// its model-resolution view would be a sliver of it; phone panoramas stay under about 8:1.
    /// </summary>
    public double MaxAspectRatio { get; init; } = 16;

    public static ImageLimits Default { get; } = new();

    /// <summary>Limits for re-reading an image this process encoded itself: its own size, no byte cap.</summary>
    public static ImageLimits ForOwnOutput(int width, int height) =>
        new(long.MaxValue, (long)width * height, Math.Max(width, height)) { MaxAspectRatio = double.PositiveInfinity };

    /// <summary>Throws when a header's dimensions break the caps; <paramref name="what"/> names the image in the message.</summary>
    public void CheckDimensions(int width, int height, string what)
    {
        if (width <= 0 || height <= 0) throw new ImageRejectedException($"{what} has invalid dimensions {width}x{height}.");
        if (width > MaxSide || height > MaxSide || (long)width * height > MaxPixels)
            throw new ImageRejectedException($"{what} is {width}x{height} pixels; the limits are {MaxSide} per side and {MaxPixels:N0} in all.");
        double aspect = (double)Math.Max(width, height) / Math.Min(width, height);
        if (aspect > MaxAspectRatio)
            throw new ImageRejectedException($"{what} is {width}x{height} pixels, an aspect ratio of {aspect:0.#}:1; the limit is {MaxAspectRatio:0.#}:1.");
    }
}

/// <summary>Why an image was refused; the message says what was wrong and the limit.</summary>
public sealed class ImageRejectedException(string message) : Exception(message);
