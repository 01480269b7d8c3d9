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
/// Draws, for each PGD step, one of the transformations a published photo goes through and applies
/// it (differentiably) to the protected images before the surrogate sees them, so the noise that
/// PGD keeps is noise that survives them. The draw is seeded by the step, so runs repeat.
/// Working at model resolution is the harsh case: a photo published larger than the model input is
/// re-encoded at a scale where the 8×8 blocks cover less than a model pixel.
/// </summary>
public static class PlatformTransforms
{
    public const int MinQuality = 60, MaxQuality = 95;
    static readonly double[] Downscales = [0.5, 0.625, 0.75, 0.875];

    public static IReadOnlyList<string> Describe(TransformSet set) => set == TransformSet.None ? []
        : [$"jpeg:{MinQuality}-{MaxQuality}", $"downscale:{Downscales.Min()}-{Downscales.Max()}", "downscale+jpeg", "none"];

    public static Tensor Apply(TransformSet set, Tensor images01, int seed, int step)
    {
        if (set == TransformSet.None) return images01;
        var rng = new Random(Seeds.Mix(seed, step, 0x7a11));
        int quality = rng.Next(MinQuality, MaxQuality + 1);
        double factor = Downscales[rng.Next(Downscales.Length)];
        return rng.Next(4) switch
        {
            0 => images01,                                                   // published as sent
            1 => DifferentiableJpeg.Apply(images01, quality),
            2 => Downscale(images01, factor),
            _ => DifferentiableJpeg.Apply(Downscale(images01, factor), quality),
        };
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
