using Unlearnable.Data;
using static TorchSharp.torch;

namespace Unlearnable.Protection.Robustness;

/// <summary>
/// Input diversity (Xie et al., CVPR 2019), a model-augmentation lever for transfer: in a drawn share of the PGD steps the
/// surrogates see the batch shrunk by a random factor in [<see cref="MinScale"/>, 1) and padded with black at a random
/// place back to its size. Noise that lowers the loss under every such view leans less on the exact pixel grid of the
/// surrogate it was made on, which is what another model's first layers do not share. The draw is seeded by the step.
/// </summary>
public static class InputDiversity
{
    public const double MinScale = 0.8;

    /// <param name="probability">The share of steps that see a shrunk view; 0 returns the images as they are.</param>
    public static Tensor Apply(Tensor images01, double probability, int seed, int step)
    {
        if (probability <= 0) return images01;
        var rng = new Random(Seeds.For(SeedStream.InputDiversity, seed, step));
        if (rng.NextDouble() >= probability) return images01;
        long size = images01.shape[2], width = images01.shape[3];
        long h = Math.Clamp((long)Math.Round(size * (MinScale + (1 - MinScale) * rng.NextDouble())), 1, size - 1);
        long w = Math.Clamp((long)Math.Round(width * h / (double)size), 1, width - 1);
        long top = rng.NextInt64(size - h + 1), left = rng.NextInt64(width - w + 1);
        using var scope = NewDisposeScope();
        var shrunk = nn.functional.interpolate(images01, [h, w], mode: InterpolationMode.Bilinear, align_corners: false);
        return nn.functional.pad(shrunk, [left, width - w - left, top, size - h - top]).MoveToOuterDisposeScope();
    }
}
