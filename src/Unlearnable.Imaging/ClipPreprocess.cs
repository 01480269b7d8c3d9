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
    /// The centre square, resized to <paramref name="size"/>: halved with a 2×2 box while it is more
    /// than twice the target (an antialiased downscale, as the hackers' PIL/torchvision resize is),
    /// then a Catmull-Rom (bicubic) step. Cropping first keeps every intermediate no larger than
    /// the square itself, whatever the image's shape.
    /// </summary>
    public static SKBitmap ResizeAndCrop(SKBitmap image, int size)
    {
        int side = Math.Min(image.Width, image.Height);
        using var window = new SKBitmap();
        if (!image.ExtractSubset(window, SKRectI.Create((image.Width - side) / 2, (image.Height - side) / 2, side, side)))
            throw new InvalidOperationException($"centre crop {side}x{side} of a {image.Width}x{image.Height} image failed");
        var current = window;   // shares the image's pixels until the first resize
        try
        {
            while (current.Width >= 2 * size + 2) Replace(ref current, Resized(current, current.Width / 2, new SKSamplingOptions(SKFilterMode.Linear)));
            if (current.Width != size) Replace(ref current, Resized(current, size, new SKSamplingOptions(SKCubicResampler.CatmullRom)));
            return ReferenceEquals(current, window)
                ? window.Copy(SKColorType.Rgba8888) ?? throw new InvalidOperationException("could not read the image as RGBA")
                : current;
        }
        catch
        {
            if (!ReferenceEquals(current, window)) current.Dispose();
            throw;
        }

        void Replace(ref SKBitmap step, SKBitmap next)
        {
            if (!ReferenceEquals(step, window)) step.Dispose();
            step = next;
        }
    }

    static SKBitmap Resized(SKBitmap square, int side, SKSamplingOptions sampling) =>
        square.Resize(new SKImageInfo(side, side, SKColorType.Rgba8888, SKAlphaType.Unpremul), sampling)
        ?? throw new InvalidOperationException($"resizing a {square.Width}px square to {side}px failed");
}
