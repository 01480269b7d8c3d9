using SkiaSharp;
using Unlearnable.Imaging;

namespace Unlearnable.Data.Synthetic;

/// <summary>
/// Camera-sized uploads for tests and benchmarks: soft gradients and shapes under per-pixel
/// sensor grain (luminance and some chroma), saved as a 4:2:0 JPEG the way phones save them.
/// Grain is what makes real photos expensive to encode; flat test images hide that.
/// </summary>
public static class PhonePhoto
{
    public static byte[] Jpeg(int width, int height, int quality = 92, int seed = 0, bool grey = false)
    {
        using var bitmap = Render(width, height, seed, grey);
        return ImageEncoding.Jpeg(bitmap, quality);
    }

    public static SKBitmap Render(int width, int height, int seed = 0, bool grey = false)
    {
        var bitmap = new SKBitmap(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Unpremul));
        var rng = new Random(seed);
        using (var canvas = new SKCanvas(bitmap))
        {
            using var sky = new SKPaint { Shader = SKShader.CreateLinearGradient(new(0, 0), new(width * 0.3f, height),
                [new SKColor(120, 170, 220), new SKColor(230, 190, 140)], SKShaderTileMode.Clamp) };
            canvas.DrawRect(0, 0, width, height, sky);
            using var paint = new SKPaint { IsAntialias = true };
            for (int i = 0; i < 12; i++)
            {
                paint.Color = new SKColor((byte)rng.Next(24, 232), (byte)rng.Next(24, 232), (byte)rng.Next(24, 232));   // exposed, not clipped
                canvas.DrawCircle(rng.NextSingle() * width, rng.NextSingle() * height, (0.05f + 0.2f * rng.NextSingle()) * Math.Min(width, height), paint);
            }
        }
        AddGrain(bitmap, (uint)seed * 2654435761u + 1, grey);
        return bitmap;
    }

    // xorshift32 per row keeps 48-megapixel fixtures to a fraction of a second.
    static void AddGrain(SKBitmap bitmap, uint seed, bool grey)
    {
        int w = bitmap.Width;
        Parallel.For(0, bitmap.Height, y =>
        {
            var row = bitmap.GetPixelSpan().Slice(y * w * 4, w * 4);
            uint s = seed ^ (uint)(y * 0x9E3779B9) | 1;
            for (int p = 0; p < row.Length; p += 4)
            {
                s ^= s << 13; s ^= s >> 17; s ^= s << 5;
                int luma = (int)(s & 15) - 7, chroma = (int)((s >> 8) & 3) - 1;   // ISO-400-like grain after the phone's denoising
                if (grey)
                {
                    byte v = (byte)Math.Clamp((row[p] * 77 + row[p + 1] * 150 + row[p + 2] * 29 >> 8) + luma, 0, 255);
                    row[p] = row[p + 1] = row[p + 2] = v;
                }
                else
                {
                    row[p] = (byte)Math.Clamp(row[p] + luma + chroma, 0, 255);
                    row[p + 1] = (byte)Math.Clamp(row[p + 1] + luma, 0, 255);
                    row[p + 2] = (byte)Math.Clamp(row[p + 2] + luma - chroma, 0, 255);
                }
                row[p + 3] = 255;
            }
        });
    }
}
