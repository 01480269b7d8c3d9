using SkiaSharp;

namespace Unlearnable.Imaging;

/// <summary>
/// Downscaling that averages, as Pillow and photo platforms do: halve with a 2×2 box while the
/// image is more than twice the target, then one Catmull-Rom (bicubic) step. Skia's cubic alone
/// would point-sample a large reduction and keep grain (and noise) a real resize averages away.
/// </summary>
public static class ImageResize
{
    /// <summary>A new RGBA bitmap of the given size; the input is not changed.</summary>
    public static SKBitmap Antialiased(SKBitmap image, int width, int height)
    {
        var current = image;   // the input until the first step
        try
        {
            while (current.Width >= 2 * width + 2 && current.Height >= 2 * height + 2)
                Replace(ref current, Resized(current, current.Width / 2, current.Height / 2, new SKSamplingOptions(SKFilterMode.Linear)));
            if (current.Width != width || current.Height != height)
                Replace(ref current, Resized(current, width, height, new SKSamplingOptions(SKCubicResampler.CatmullRom)));
            return ReferenceEquals(current, image)
                ? RgbaCopy.Of(image)
                : current;
        }
        catch
        {
            if (!ReferenceEquals(current, image)) current.Dispose();
            throw;
        }

        void Replace(ref SKBitmap step, SKBitmap next)
        {
            if (!ReferenceEquals(step, image)) step.Dispose();
            step = next;
        }
    }

    static SKBitmap Resized(SKBitmap bitmap, int width, int height, SKSamplingOptions sampling) =>
        bitmap.Resize(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Unpremul), sampling)
        ?? throw new InvalidOperationException($"resizing a {bitmap.Width}x{bitmap.Height} image to {width}x{height} failed");
}
