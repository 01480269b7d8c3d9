using SkiaSharp;

namespace Unlearnable.Protection;

/// <summary>
/// Carries noise computed at model resolution back to a full-resolution image. The model saw the
/// centre square of the image, resized; the noise is resized bilinearly (a convex combination,
/// so the L∞ bound holds) onto that square, added, clamped and rounded to 8 bits (rounding a
/// value within ±k of an integer stays within ±k). Pixels the model never saw are left alone.
/// The output is the only full-size allocation: the input is read in place when it is RGBA.
/// </summary>
public static class NoiseMapping
{
    /// <param name="delta">[3, S, S] noise in units of 1/255.</param>
    public static SKBitmap Apply(SKBitmap original, sbyte[] delta, int size)
    {
        if (delta.Length != 3 * size * size) throw new ArgumentException($"noise has {delta.Length} values; a {size}px square needs {3 * size * size}");
        int w = original.Width, h = original.Height, side = Math.Min(w, h);
        int x0 = (w - side) / 2, y0 = (h - side) / 2;
        var output = original.Copy(SKColorType.Rgba8888) ?? throw new InvalidOperationException("could not read the image as RGBA");
        var (xa, xb, fx) = Taps(side, size);   // a square: rows use the same taps
        Parallel.For(0, side, y =>
        {
            int ya = xa[y], yb = xb[y];
            float fy = fx[y];
            var row = output.GetPixelSpan().Slice((y0 + y) * w * 4, w * 4);
            for (int x = 0; x < side; x++)
            {
                int p = (x0 + x) * 4;
                for (int c = 0; c < 3; c++)
                {
                    int plane = c * size * size;
                    float top = delta[plane + ya * size + xa[x]] + fx[x] * (delta[plane + ya * size + xb[x]] - delta[plane + ya * size + xa[x]]);
                    float bottom = delta[plane + yb * size + xa[x]] + fx[x] * (delta[plane + yb * size + xb[x]] - delta[plane + yb * size + xa[x]]);
                    row[p + c] = (byte)Math.Clamp(MathF.Round(row[p + c] + top + fy * (bottom - top)), 0, 255);
                }
            }
        });
        return output;
    }

    // For each full-resolution coordinate along the square, the two noise samples it lies between and the weight of the second.
    static (int[] A, int[] B, float[] F) Taps(int side, int size)
    {
        var (a, b, f) = (new int[side], new int[side], new float[side]);
        double scale = (double)size / side;
        for (int i = 0; i < side; i++)
        {
            double s = Math.Clamp((i + 0.5) * scale - 0.5, 0, size - 1);
            a[i] = (int)s;
            b[i] = Math.Min(a[i] + 1, size - 1);
            f[i] = (float)(s - a[i]);
        }
        return (a, b, f);
    }
}
