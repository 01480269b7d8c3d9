using SkiaSharp;

namespace Unlearnable.Protection;

/// <summary>
/// Carries noise computed at model resolution back to a full-resolution image. The model saw the
/// centre square of the image, resized; the noise is resized bilinearly (a convex combination,
/// so the L∞ bound holds) onto that square, added, clamped and rounded to 8 bits (rounding a
/// value within ±k of an integer stays within ±k). Pixels the model never saw are left alone.
/// </summary>
public static class NoiseMapping
{
    /// <param name="delta">[3, S, S] noise in units of 1/255.</param>
    public static SKBitmap Apply(SKBitmap original, sbyte[] delta, int size)
    {
        int w = original.Width, h = original.Height, side = Math.Min(w, h);
        int x0 = (w - side) / 2, y0 = (h - side) / 2;
        var output = new SKBitmap(new SKImageInfo(w, h, SKColorType.Rgba8888, SKAlphaType.Unpremul));
        var src = original.Copy(SKColorType.Rgba8888) ?? throw new InvalidOperationException("could not read the image as RGBA");
        var from = src.GetPixelSpan();
        var to = output.GetPixelSpan();
        from.CopyTo(to);
        double scale = (double)size / side;
        for (int y = 0; y < side; y++)
        {
            double sy = Math.Clamp((y + 0.5) * scale - 0.5, 0, size - 1);
            int ya = (int)sy, yb = Math.Min(ya + 1, size - 1);
            double fy = sy - ya;
            for (int x = 0; x < side; x++)
            {
                double sx = Math.Clamp((x + 0.5) * scale - 0.5, 0, size - 1);
                int xa = (int)sx, xb = Math.Min(xa + 1, size - 1);
                double fx = sx - xa;
                int p = ((y0 + y) * w + x0 + x) * 4;
                for (int c = 0; c < 3; c++)
                {
                    int plane = c * size * size;
                    double d = (1 - fy) * ((1 - fx) * delta[plane + ya * size + xa] + fx * delta[plane + ya * size + xb])
                             + fy * ((1 - fx) * delta[plane + yb * size + xa] + fx * delta[plane + yb * size + xb]);
                    to[p + c] = (byte)Math.Clamp(Math.Round(from[p + c] + d), 0, 255);
                }
            }
        }
        src.Dispose();
        return output;
    }

    /// <summary>Largest per-channel difference between two same-sized images, in 1/255 units.</summary>
    public static int LInfinity(SKBitmap a, SKBitmap b) => Compare(a, b).LInfinity;

    /// <summary>PSNR in dB over RGB (∞ for identical images).</summary>
    public static double Psnr(SKBitmap a, SKBitmap b) => Compare(a, b).Psnr;

    /// <summary>L∞ (1/255 units) and PSNR (dB) over RGB, in one pass over both images.</summary>
    public static (int LInfinity, double Psnr) Compare(SKBitmap a, SKBitmap b)
    {
        if (a.Width != b.Width || a.Height != b.Height) throw new ArgumentException("images differ in size");
        using var ca = a.Copy(SKColorType.Rgba8888);
        using var cb = b.Copy(SKColorType.Rgba8888);
        var pa = ca.GetPixelSpan();
        var pb = cb.GetPixelSpan();
        int max = 0;
        double sum = 0;
        long n = 0;
        for (int i = 0; i < pa.Length; i++)
        {
            if (i % 4 == 3) continue;
            int d = pa[i] - pb[i];
            max = Math.Max(max, Math.Abs(d));
            sum += d * d;
            n++;
        }
        return (max, sum == 0 ? double.PositiveInfinity : 10 * Math.Log10(255.0 * 255.0 / (sum / n)));
    }
}
