using Unlearnable.Clip.Model;
using Unlearnable.Clip.Runtime;
using Unlearnable.Data;
using Unlearnable.Protection;
using Unlearnable.Training;
using static TorchSharp.torch;

namespace Unlearnable.Experiments;

/// <summary>The two image-only shortcuts probed against the hacker's caption clean-up.</summary>
public enum ImageOnlyKind
{
    /// <summary>Fawkes-style: each photo's features moved, at the surrogate, from its person's clean centroid towards the farthest other person's.</summary>
    Cloak,
    /// <summary>One random ±ε pattern per person (8-pixel blocks at model size), the same on all their photos: a class-wise shortcut.</summary>
    Pattern,
}

/// <summary>
/// Noise that carries no trigger, so a hacker who rewrites every caption to "a photo of NAME" cannot strip it: what is
/// left for protection once the captions are the hacker's. Both kinds work per person (the photos' owners), the cloak
/// against a fixed surrogate (the public model a fine-tuning hacker starts from). Measurement probes, not product
/// protections: docs/face-study-lfw.md says what they kept.
/// </summary>
public sealed class ImageOnlyNoise(ClipModel surrogate, double epsilon, Device device)
{
    public const int PatternBlock = 8;
    const int Chunk = 32;

    /// <summary>PGD steps of the cloak (each 1/255).</summary>
    public int CloakSteps { get; init; } = 30;

    /// <summary>Each photo's person as a number (people numbered in order of first appearance), and how many people there are.</summary>
    public static (int[] PersonOf, int People) Number(IReadOnlyList<CaptionedImage> photos)
    {
        if (photos.Any(p => p.Owner is null)) throw new ArgumentException("every photo needs its person (an identity data set)");
        var people = new Dictionary<string, int>();
        var personOf = photos.Select(p => people.TryGetValue(p.Owner!, out int known) ? known : people[p.Owner!] = people.Count).ToArray();
        return (personOf, people.Count);
    }

    public ProtectionResult Make(IReadOnlyList<CaptionedImage> photos, ImageOnlyKind kind, int seed, string noisePath)
    {
        var (personOf, people) = Number(photos);
        if (people < 2) throw new ArgumentException($"the probes need at least 2 people, got {people}");
        int size = surrogate.Config.Vision.ImageSize;
        var pixels = new ImageTensors(size);
        var noise = NoiseStore.OpenOrCreate(noisePath, photos.Count, size);
        try
        {
            using var targets = kind == ImageOnlyKind.Cloak ? CloakTargets(photos, personOf, people, pixels) : null;
            using var patterns = kind == ImageOnlyKind.Pattern ? Patterns(people, size, seed, device) : null;
            foreach (var chunk in Enumerable.Range(0, photos.Count).Chunk(Chunk))
            {
                using var scope = NewDisposeScope();
                var clean01 = PixelSpace.Unnormalize(pixels.Batch(chunk.Select(i => photos[i].Image).ToList(), device));
                var own = tensor(chunk.Select(i => (long)personOf[i]).ToArray(), device: device);
                var delta = kind == ImageOnlyKind.Cloak
                    ? Cloak(clean01, targets!.Self.index_select(0, own), targets.Target.index_select(0, own))
                    // One step of ε along the pattern, clipped to the valid range like any PGD step.
                    : Pgd.Step(zeros_like(clean01), patterns!.index_select(0, own), clean01, epsilon, epsilon, minimise: false);
                noise.Write(chunk, delta);
            }
            noise.Flush();
            return new ProtectionResult(noise, null, [], TimeSpan.Zero, TimeSpan.Zero, TimeSpan.Zero);
        }
        catch
        {
            noise.Dispose();
            throw;
        }
    }

    /// <summary>The surrogate's clean image features of each photo, normalised.</summary>
    public Tensor Features(Tensor images01)
    {
        using var scope = NewDisposeScope();
        return nn.functional.normalize(surrogate.EncodeImage(PixelSpace.Normalize(images01)), dim: 1).MoveToOuterDisposeScope();
    }

    /// <summary>Per person, [people, D]: their clean centroid and the centroid of the person least like them (people numbered by <see cref="Number"/>).</summary>
    public CloakCentroids CloakTargets(IReadOnlyList<CaptionedImage> photos, int[] personOf, int people, ImageTensors pixels)
    {
        surrogate.eval();
        using var scope = NewDisposeScope();
        var sums = zeros(people, surrogate.Config.EmbedDim, device: device);
        using (no_grad())
            foreach (var chunk in Enumerable.Range(0, photos.Count).Chunk(Chunk))
                sums.index_add_(0, tensor(chunk.Select(i => (long)personOf[i]).ToArray(), device: device),
                    Features(PixelSpace.Unnormalize(pixels.Batch(chunk.Select(i => photos[i].Image).ToList(), device))), KeptScalars.One);
        var centroids = nn.functional.normalize(sums, dim: 1);
        var similarity = centroids.matmul(centroids.T).Plus(eye(people, device: device).mul(3.0));   // never oneself
        var target = centroids.index_select(0, similarity.argmin(1));
        return new CloakCentroids(centroids.MoveToOuterDisposeScope(), target.MoveToOuterDisposeScope());
    }

    // PGD descending cos(f, own centroid) − cos(f, target centroid): away from the person, towards the one least like them.
    Tensor Cloak(Tensor clean01, Tensor self, Tensor target)
    {
        var delta = zeros_like(clean01);
        for (int step = 0; step < CloakSteps; step++)
        {
            using var scope = NewDisposeScope();
            var d = delta.detach().requires_grad_(true);
            var f = Features(clean01.Plus(d).Clamped(0, 1));
            var loss = f.mul(self.Minus(target)).sum();
            var gradient = autograd.grad([loss], [d])[0];
            var next = Pgd.Step(delta, gradient, clean01, epsilon, 1 / 255.0, minimise: true).MoveToOuterDisposeScope();
            delta.Dispose();
            delta = next;
        }
        return delta;
    }

    // [people, 3, S, S] of ±1: seeded random signs on 8-pixel blocks.
    static Tensor Patterns(int people, int size, int seed, Device device)
    {
        using var scope = NewDisposeScope();
        int cells = (size + PatternBlock - 1) / PatternBlock;
        using var generator = new Generator((ulong)(uint)Seeds.For(SeedStream.PersonPattern, seed));
        var coarse = randn([people, 3, cells, cells], generator: generator).sign();
        return coarse.repeat_interleave(PatternBlock, 2).repeat_interleave(PatternBlock, 3)
            .narrow(2, 0, size).narrow(3, 0, size).to(device).MoveToOuterDisposeScope();
    }
}

public sealed record CloakCentroids(Tensor Self, Tensor Target) : IDisposable
{
    public void Dispose()
    {
        Self.Dispose();
        Target.Dispose();
    }
}
