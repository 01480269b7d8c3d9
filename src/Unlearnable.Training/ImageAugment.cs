using Unlearnable.Clip.Model;
using Unlearnable.Data;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Unlearnable.Training;

/// <summary>
/// Heavy augmentation a hacker trains with to wash out protective noise (UEraser, 2023): every image of every batch
/// gets, drawn afresh each epoch and step, a random resized crop (30–100 % of the area, aspect 3:4–4:3), a
/// horizontal flip, brightness, contrast and saturation jitter (×0.6–1.4), a channel shuffle (half the time) and
/// Gaussian noise (σ = 0.05 of the pixel range). The draws are seeded by (seed, epoch, step), so a resumed run
/// sees the same augmentation.
/// </summary>
public sealed class ImageAugment(int seed)
{
    public const double MinArea = 0.3, MaxAspect = 4.0 / 3, Jitter = 0.4, NoiseSigma = 0.05;

    /// <summary>The batch (CLIP-normalised, [n, 3, s, s]) augmented, normalised again.</summary>
    public Tensor Apply(Tensor normalized, int epoch, int step)
    {
        var rng = new Random(Seeds.For(SeedStream.Augmentation, seed, epoch, step));
        long n = normalized.shape[0], size = normalized.shape[2];
        using var scope = NewDisposeScope();
        var pixels = PixelSpace.Unnormalize(normalized);
        var images = new List<Tensor>((int)n);
        for (long i = 0; i < n; i++)
        {
            var image = Crop(pixels[i].unsqueeze(0), size, rng);
            if (rng.NextDouble() < 0.5) image = image.flip(3);
            image = ColourJitter(image, rng);
            if (rng.NextDouble() < 0.5) image = image.index_select(1, tensor(Permutation(rng), device: image.device));
            images.Add(image);
        }
        var batch = cat(images, 0);
        var noise = new float[batch.numel()];
        for (int k = 0; k < noise.Length; k++) noise[k] = (float)(NoiseSigma * Gaussian(rng));
        batch = (batch + tensor(noise, batch.shape).to(batch.device)).clamp(0, 1);
        return PixelSpace.Normalize(batch).MoveToOuterDisposeScope();
    }

    static Tensor Crop(Tensor image, long size, Random rng)
    {
        double area = MinArea + (1 - MinArea) * rng.NextDouble();
        double aspect = Math.Exp(Math.Log(1 / MaxAspect) + 2 * Math.Log(MaxAspect) * rng.NextDouble());
        long w = Math.Clamp((long)Math.Round(size * Math.Sqrt(area * aspect)), 1, size), h = Math.Clamp((long)Math.Round(size * Math.Sqrt(area / aspect)), 1, size);
        long x = rng.NextInt64(size - w + 1), y = rng.NextInt64(size - h + 1);
        var crop = image.narrow(2, y, h).narrow(3, x, w);
        return functional.interpolate(crop, [size, size], mode: InterpolationMode.Bilinear, align_corners: false);
    }

    static Tensor ColourJitter(Tensor image, Random rng)
    {
        double Factor() => 1 - Jitter + 2 * Jitter * rng.NextDouble();
        image = image * Factor();                                                            // brightness
        var grey = (0.299 * image[.., 0] + 0.587 * image[.., 1] + 0.114 * image[.., 2]).unsqueeze(1);
        image = (image - grey.mean()) * Factor() + grey.mean();                               // contrast about the mean grey
        grey = (0.299 * image[.., 0] + 0.587 * image[.., 1] + 0.114 * image[.., 2]).unsqueeze(1);
        return ((image - grey) * Factor() + grey).clamp(0, 1);                                // saturation about each pixel's grey
    }

    static long[] Permutation(Random rng)
    {
        long[] order = [0, 1, 2];
        rng.Shuffle(order);
        return order;
    }

    static double Gaussian(Random rng) => Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());
}
