using SkiaSharp;
using Unlearnable.Imaging;

namespace Unlearnable.Protection;

/// <summary>
/// Carries noise computed at model resolution back to a full-resolution image. The model saw the
/// centre square of the image, resized; the noise is resized bilinearly (a convex combination,
/// so the L∞ bound holds) onto that square, added, clamped and rounded to 8 bits (rounding a
/// value within ±k of an integer stays within ±k). Pixels the model never saw are left alone.
/// The output is the only full-size allocation (besides the noise rows carried across the square, 3 × S rows of
/// the square's side): the input is read in place when it is RGBA.
/// </summary>
public static class NoiseMapping
{
    /// <param name="delta">[3, S, S] noise in units of 1/255.</param>
    public static SKBitmap Apply(SKBitmap original, sbyte[] delta, int size)
    {
        if (delta.Length != 3 * size * size) throw new ArgumentException($"noise has {delta.Length} values; a {size}px square needs {3 * size * size}");
        int w = original.Width, h = original.Height, side = Math.Min(w, h);
        int x0 = (w - side) / 2, y0 = (h - side) / 2;
        var output = RgbaCopy.Of(original);
        var (xa, xb, fx) = Taps(side, size);   // a square: rows use the same taps
        // Each noise row carried across the square once ([row, channel, x]): every pixel is then one step between two of them.
        var across = new float[size * 3 * side];
        for (int r = 0; r < size; r++)
            for (int c = 0; c < 3; c++)
            {
                int at = c * size * size + r * size;
                var line = across.AsSpan((r * 3 + c) * side, side);
                for (int x = 0; x < side; x++) line[x] = delta[at + xa[x]] + fx[x] * (delta[at + xb[x]] - delta[at + xa[x]]);
            }
        Parallel.For(0, side, y =>
        {
            float fy = fx[y];
            var row = output.GetPixelSpan().Slice((y0 + y) * w * 4 + x0 * 4, side * 4);
            for (int c = 0; c < 3; c++)
            {
                var top = across.AsSpan((xa[y] * 3 + c) * side, side);
                var bottom = across.AsSpan((xb[y] * 3 + c) * side, side);
                for (int x = 0, p = c; x < side; x++, p += 4)
                    row[p] = (byte)Math.Clamp(MathF.Round(row[p] + top[x] + fy * (bottom[x] - top[x])), 0, 255);
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
