using SkiaSharp;

namespace Unlearnable.Imaging;

/// <summary>How far one image is from another of the same size, over RGB (alpha ignored).</summary>
public static class PixelDifference
{
    /// <summary>Largest per-channel difference, in 1/255 units.</summary>
    public static int LInfinity(SKBitmap a, SKBitmap b) => Compare(a, b).LInfinity;

    /// <summary>PSNR in dB (∞ for identical images).</summary>
    public static double Psnr(SKBitmap a, SKBitmap b) => Compare(a, b).Psnr;

    /// <summary>L∞ (1/255 units) and PSNR (dB), in one pass; copies only a bitmap that is not already RGBA.</summary>
    public static (int LInfinity, double Psnr) Compare(SKBitmap a, SKBitmap b)
    {
        if (a.Width != b.Width || a.Height != b.Height) throw new ArgumentException($"images differ in size ({a.Width}x{a.Height} against {b.Width}x{b.Height})");
        using var ca = Rgba(a);
        using var cb = Rgba(b);
        var pa = (ca ?? a).GetPixelSpan();
        var pb = (cb ?? b).GetPixelSpan();
        int max = 0;
        long sum = 0;
        for (int i = 0; i < pa.Length; i += 4)
            for (int c = 0; c < 3; c++)
            {
                int d = pa[i + c] - pb[i + c];
                if (d < 0) d = -d;
                if (d > max) max = d;
                sum += d * d;
            }
        double mse = sum / (pa.Length / 4 * 3.0);
        return (max, sum == 0 ? double.PositiveInfinity : 10 * Math.Log10(255.0 * 255.0 / mse));
    }

    static SKBitmap? Rgba(SKBitmap bitmap) => bitmap.ColorType == SKColorType.Rgba8888 ? null
        : bitmap.Copy(SKColorType.Rgba8888) ?? throw new InvalidOperationException("could not read the image as RGBA");
}
