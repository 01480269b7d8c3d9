namespace Unlearnable.Imaging;

/// <summary>Caps applied to untrusted images before any pixel is decoded.</summary>
public sealed record ImageLimits(long MaxBytes = 32L << 20, long MaxPixels = 40_000_000, int MaxSide = 16_384)
{
    /// <summary>Refuse images with more than one frame (animated GIF, PNG or WebP) instead of reading the first.</summary>
    public bool RefuseAnimation { get; init; }

    public static ImageLimits Default { get; } = new();
}

/// <summary>Why an image was refused; the message says what was wrong and the limit.</summary>
public sealed class ImageRejectedException(string message) : Exception(message);
