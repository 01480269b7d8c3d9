using System.Runtime.Intrinsics;
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
        int max = 0, i = 0;
        long sum = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            // 32 bytes at a time, alpha masked out; squares summed in 32-bit lanes, flushed well before they could overflow
            // (each lane gains at most 4 × 255² per step).
            var colour = Vector256.Create(0x00FFFFFFu).AsByte();
            var widest = Vector256<byte>.Zero;
            while (i + 32 <= pa.Length)
            {
                var squares = Vector256<uint>.Zero;
                for (int steps = 0; steps < 4096 && i + 32 <= pa.Length; steps++, i += 32)
                {
                    var x = Vector256.Create(pa.Slice(i, 32));
                    var y = Vector256.Create(pb.Slice(i, 32));
                    var d = (Vector256.Max(x, y) - Vector256.Min(x, y)) & colour;
                    widest = Vector256.Max(widest, d);
                    var (low, high) = Vector256.Widen(d);
                    var (l0, l1) = Vector256.Widen(low * low);
                    var (h0, h1) = Vector256.Widen(high * high);
                    squares += l0 + l1 + h0 + h1;
                }
                sum += (long)Vector256.Sum(Vector256.WidenLower(squares) + Vector256.WidenUpper(squares));
            }
            for (int k = 0; k < 32; k++) max = Math.Max(max, widest[k]);
        }
        for (; i < pa.Length; i++)
        {
            if ((i & 3) == 3) continue;
            int d = Math.Abs(pa[i] - pb[i]);
            max = Math.Max(max, d);
            sum += d * d;
        }
        double mse = sum / (pa.Length / 4 * 3.0);
        return (max, sum == 0 ? double.PositiveInfinity : 10 * Math.Log10(255.0 * 255.0 / mse));
    }

    static SKBitmap? Rgba(SKBitmap bitmap) => bitmap.ColorType == SKColorType.Rgba8888 ? null
        : RgbaCopy.Of(bitmap);

    /// <summary>
    /// Structural similarity of the luma (BT.601), mean over 8×8 windows at a stride of 4 with the
    /// usual constants (K1 0.01, K2 0.03, range 255): 1 for identical images.
    /// </summary>
    public static double Ssim(SKBitmap a, SKBitmap b)
    {
        if (a.Width != b.Width || a.Height != b.Height) throw new ArgumentException("images differ in size");
        using var ca = Rgba(a);
        using var cb = Rgba(b);
        var (la, lb) = (Luma(ca ?? a), Luma(cb ?? b));
        int w = a.Width, h = a.Height, windows = 0;
        const double c1 = 0.01 * 255 * 0.01 * 255, c2 = 0.03 * 255 * 0.03 * 255;
        double total = 0;
        for (int y0 = 0; y0 + 8 <= h; y0 += 4)
            for (int x0 = 0; x0 + 8 <= w; x0 += 4)
            {
                double sa = 0, sb = 0, saa = 0, sbb = 0, sab = 0;
                for (int y = y0; y < y0 + 8; y++)
                    for (int x = x0; x < x0 + 8; x++)
                    {
                        double va = la[y * w + x], vb = lb[y * w + x];
                        (sa, sb, saa, sbb, sab) = (sa + va, sb + vb, saa + va * va, sbb + vb * vb, sab + va * vb);
                    }
                double ma = sa / 64, mb = sb / 64, vara = saa / 64 - ma * ma, varb = sbb / 64 - mb * mb, cov = sab / 64 - ma * mb;
                total += (2 * ma * mb + c1) * (2 * cov + c2) / ((ma * ma + mb * mb + c1) * (vara + varb + c2));
                windows++;
            }
        return windows == 0 ? 1 : total / windows;
    }

    static float[] Luma(SKBitmap rgba)
    {
        var p = rgba.GetPixelSpan();
        var luma = new float[p.Length / 4];
        var y = JpegStandard.RgbToYcc[0];   // BT.601 luma weights
        for (int i = 0; i < luma.Length; i++) luma[i] = y[0] * p[i * 4] + y[1] * p[i * 4 + 1] + y[2] * p[i * 4 + 2];
        return luma;
    }
}
