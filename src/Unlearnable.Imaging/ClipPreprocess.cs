using SkiaSharp;

namespace Unlearnable.Imaging;

/// <summary>
/// CLIP's image transform: resize the shorter side to <c>size</c> (bicubic), centre-crop to
/// size×size, scale to [0,1], then normalise with CLIP's channel mean and std. Output is CHW float.
/// </summary>
public static class ClipPreprocess
{
    public static readonly float[] Mean = [0.48145466f, 0.4578275f, 0.40821073f];
    public static readonly float[] Std = [0.26862954f, 0.26130258f, 0.27577711f];

    public static float[] ToChw(SKBitmap image, int size)
    {
        var chw = ToChw01(image, size);
        int plane = size * size;
        for (int c = 0; c < 3; c++)
            for (int i = c * plane; i < (c + 1) * plane; i++)
                chw[i] = (chw[i] - Mean[c]) / Std[c];
        return chw;
    }

    /// <summary>The resized centre square as CHW floats in [0, 1], before normalisation (where pixel noise lives).</summary>
    public static float[] ToChw01(SKBitmap image, int size)
    {
        using var square = ResizeAndCrop(image, size);
        var pixels = square.GetPixelSpan();
        int plane = size * size;
        var chw = new float[3 * plane];
        for (int i = 0; i < plane; i++)
            for (int c = 0; c < 3; c++)
                chw[c * plane + i] = pixels[i * 4 + c] / 255f;
        return chw;
    }

    /// <summary>
    /// The centre square, resized to <paramref name="size"/> with an averaging downscale
    /// (<see cref="ImageResize"/>). Cropping first keeps every intermediate no larger than the
    /// square itself, whatever the image's shape.
    /// </summary>
    public static SKBitmap ResizeAndCrop(SKBitmap image, int size)
    {
        int side = Math.Min(image.Width, image.Height);
        using var window = new SKBitmap();   // shares the image's pixels
        if (!image.ExtractSubset(window, SKRectI.Create((image.Width - side) / 2, (image.Height - side) / 2, side, side)))
            throw new InvalidOperationException($"centre crop {side}x{side} of a {image.Width}x{image.Height} image failed");
        return ImageResize.Antialiased(window, size, size);
    }
}
