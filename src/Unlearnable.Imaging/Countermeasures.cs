using System.Globalization;
using SkiaSharp;

namespace Unlearnable.Imaging;

public enum CountermeasureKind { Jpeg, Rescale, Grayscale, Blur, Platform }

/// <summary>
/// What a hacker (or a platform) may do to images before training on them, in the hope of
/// washing out protective noise: re-encode as JPEG, downscale then upscale back, drop colour,
/// blur, or what a photo platform does to every upload ("platform": the long side down to
/// 1080 pixels when larger, then JPEG at quality 85). Written "jpeg:75", "rescale:0.5",
/// "grayscale", "blur:1.5", "platform".
/// </summary>
public sealed record Countermeasure(CountermeasureKind Kind, double Amount = 0)
{
    public const int PlatformLongSide = 1080, PlatformQuality = 85;

    public override string ToString() => Kind switch
    {
        CountermeasureKind.Grayscale => "grayscale",
        CountermeasureKind.Platform => "platform",
        _ => $"{Kind.ToString().ToLowerInvariant()}:{Amount.ToString(CultureInfo.InvariantCulture)}",
    };

    public static Countermeasure Parse(string text)
    {
        var parts = text.Trim().ToLowerInvariant().Split(':', 2);
        double Amount(double min, double max, string what)
        {
            if (parts.Length < 2 || !double.TryParse(parts[1], NumberStyles.Float, CultureInfo.InvariantCulture, out var v) || v < min || v > max)
                throw new ArgumentException($"'{text}': {what} must be a number in [{min.ToString(CultureInfo.InvariantCulture)}, {max.ToString(CultureInfo.InvariantCulture)}]");
            return v;
        }
        return parts[0] switch
        {
            "jpeg" => new(CountermeasureKind.Jpeg, Amount(1, 100, "the JPEG quality")),
            "rescale" => new(CountermeasureKind.Rescale, Amount(0.05, 1, "the downscale factor")),
            "grayscale" when parts.Length == 1 => new(CountermeasureKind.Grayscale),
            "platform" when parts.Length == 1 => new(CountermeasureKind.Platform),
            "blur" => new(CountermeasureKind.Blur, Amount(0.1, 20, "the blur sigma (pixels)")),
            _ => throw new ArgumentException($"unknown countermeasure '{text}'; use jpeg:Q, rescale:F, grayscale, blur:SIGMA or platform"),
        };
    }

    /// <summary>The transformed image: the input's size, except that "platform" shrinks a large one as a platform would.</summary>
    public SKBitmap Apply(SKBitmap image)
    {
        switch (Kind)
        {
            case CountermeasureKind.Jpeg:
                return ReEncoded(image, (int)Math.Round(Amount));
            case CountermeasureKind.Platform:
            {
                double scale = Math.Min(1, (double)PlatformLongSide / Math.Max(image.Width, image.Height));
                if (scale >= 1) return ReEncoded(image, PlatformQuality);
                using var smaller = ImageResize.Antialiased(image, Math.Max(1, (int)Math.Round(image.Width * scale)), Math.Max(1, (int)Math.Round(image.Height * scale)));
                return ReEncoded(smaller, PlatformQuality);
            }
            case CountermeasureKind.Rescale:
            {
                int w = Math.Max(1, (int)Math.Round(image.Width * Amount)), h = Math.Max(1, (int)Math.Round(image.Height * Amount));
                using var small = ImageResize.Antialiased(image, w, h);
                return small.Resize(new SKImageInfo(image.Width, image.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul), new SKSamplingOptions(SKCubicResampler.CatmullRom));
            }
            case CountermeasureKind.Grayscale:
            {
                var output = RgbaCopy.Of(image);
                var pixels = output.GetPixelSpan();
                for (int p = 0; p < pixels.Length; p += 4)
                {
                    byte y = (byte)Math.Clamp(Math.Round(0.299 * pixels[p] + 0.587 * pixels[p + 1] + 0.114 * pixels[p + 2]), 0, 255);   // ITU-R BT.601 luma
                    pixels[p] = pixels[p + 1] = pixels[p + 2] = y;
                }
                return output;
            }
            default:
            {
                var output = new SKBitmap(new SKImageInfo(image.Width, image.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul));
                using var canvas = new SKCanvas(output);
                using var paint = new SKPaint { ImageFilter = SKImageFilter.CreateBlur((float)Amount, (float)Amount, SKShaderTileMode.Clamp) };
                using var source = SKImage.FromBitmap(image);
                canvas.DrawImage(source, 0, 0, new SKSamplingOptions(SKFilterMode.Linear), paint);
                return output;
            }
        }
    }

    static SKBitmap ReEncoded(SKBitmap image, int quality) =>
        SafeImageDecoder.Decode(ImageEncoding.Jpeg(image, quality), ImageLimits.ForOwnOutput(image.Width, image.Height), "re-encoded JPEG");
}
