using Unlearnable.Data;
using static TorchSharp.torch;

namespace Unlearnable.Protection.Robustness;

/// <summary>What the noise is optimised to survive (expectation over transformations, EOT).</summary>
public enum TransformSet
{
    /// <summary>Nothing: the authors' loop, noise for the exact published pixels.</summary>
    None,
    /// <summary>What photo platforms do before a crawler sees a post: JPEG re-encoding at qualities 60–95, downscaling (to half), both.</summary>
    Platform,
}

/// <summary>
/// Draws, for each PGD step, what happens to the published photo and applies it (differentiably) to
/// the protected images before the surrogate sees them, so the noise PGD keeps is noise that
/// survives it: half the steps see the photo as sent, the rest a JPEG re-encode, a downscale, or
/// both. The draw is seeded by the step, so runs repeat. The JPEG is taken at twice the model's
/// resolution (a published photo is rarely smaller than that; at model resolution the 8×8 blocks
/// would wash out far more than any platform does, and PGD would chase the wrong noise).
/// </summary>
public static class PlatformTransforms
{
    public const int MinQuality = 60, MaxQuality = 95, JpegScale = 2;
    static readonly double[] Downscales = [0.5, 0.625, 0.75, 0.875];

    public static IReadOnlyList<string> Describe(TransformSet set) => set == TransformSet.None ? []
        : ["none (half the steps)", $"jpeg:{MinQuality}-{MaxQuality} at {JpegScale}x the model size", $"downscale:{Downscales.Min()}-{Downscales.Max()}", "downscale+jpeg"];

    public static Tensor Apply(TransformSet set, Tensor images01, int seed, int step)
    {
        if (set == TransformSet.None) return images01;
        var rng = new Random(Seeds.For(SeedStream.PlatformTransform, seed, step));
        int quality = rng.Next(MinQuality, MaxQuality + 1);
        double factor = Downscales[rng.Next(Downscales.Length)];
        return rng.Next(6) switch
        {
            < 3 => images01,                                                 // published as sent
            3 => Jpeg(images01, quality),
            4 => Downscale(images01, factor),
            _ => Jpeg(Downscale(images01, factor), quality),
        };
    }

    static Tensor Jpeg(Tensor images01, int quality)
    {
        long h = images01.shape[2], w = images01.shape[3];
        using var scope = NewDisposeScope();
        var larger = nn.functional.interpolate(images01, [h * JpegScale, w * JpegScale], mode: InterpolationMode.Bilinear, align_corners: false);
        var encoded = DifferentiableJpeg.Apply(larger, quality);
        return nn.functional.interpolate(encoded, [h, w], mode: InterpolationMode.Bilinear, align_corners: false, antialias: true).MoveToOuterDisposeScope();
    }

    // Down with an averaging (antialiased) filter, as Pillow and platforms resize, then back up bilinearly to the model's size.
    static Tensor Downscale(Tensor images01, double factor)
    {
        long h = images01.shape[2], w = images01.shape[3];
        using var scope = NewDisposeScope();
        var small = nn.functional.interpolate(images01, [(long)Math.Round(h * factor), (long)Math.Round(w * factor)], mode: InterpolationMode.Bilinear, align_corners: false, antialias: true);
        return nn.functional.interpolate(small, [h, w], mode: InterpolationMode.Bilinear, align_corners: false).MoveToOuterDisposeScope();
    }
}
