using Unlearnable.Clip.Runtime;
using static TorchSharp.torch;

namespace Unlearnable.Protection;

/// <summary>
/// The share of the noise that all of one person's photos carry: a pattern per user (class-wise
/// noise), bounded by <see cref="Bound"/>, on top of each photo's own noise. A face-privacy attack
/// learns a person from all their photos, so the shortcut that stops it is one the photos share:
/// the hacker's model ties the name to the pattern instead of the face, and finds neither on a
/// clean photo. The pattern is optimised with every batch a user's photos are in (the gradient of
/// all their photos in the batch) and the caller keeps it between batches, like a sticky trigger.
/// </summary>
public sealed class UserNoise : IDisposable
{
    /// <summary>
    /// The share of ε the sidecar (and the in-process posts path) spends on the user's pattern by default: none.
    /// On real faces ½ ε measured no better than sample-wise noise alone (docs/results.md), so it is there to turn on, not on.
    /// </summary>
    public const double DefaultShare = 0;

    readonly Tensor _rows, _has;

    /// <param name="patterns">[users, 3, S, S] in pixel units, each within ±<paramref name="bound"/>.</param>
    /// <param name="userOfSample">Per sample of the batch, its row in <paramref name="patterns"/>, or -1 (no user: an anchor pair).</param>
    public UserNoise(Tensor patterns, IReadOnlyList<int> userOfSample, double bound)
    {
        if (!(bound > 0)) throw new ArgumentOutOfRangeException(nameof(bound), bound, "the user share of ε must be positive");
        if (userOfSample.Any(u => u >= patterns.shape[0])) throw new ArgumentException("a sample names a user row that the patterns do not have");
        Bound = bound;
        // Owned here, outside any dispose scope: the patterns outlive the optimiser's per-step scopes.
        Patterns = patterns.detach().Clamped(-bound, bound).DetachFromDisposeScope();
        _rows = tensor(userOfSample.Select(u => (long)Math.Max(u, 0)).ToArray(), device: patterns.device).DetachFromDisposeScope();
        _has = tensor(userOfSample.Select(u => u >= 0 ? 1f : 0f).ToArray(), [userOfSample.Count, 1, 1, 1]).to(patterns.device).DetachFromDisposeScope();
    }

    public Tensor Patterns { get; private set; }
    public double Bound { get; }

    /// <summary>Where the caller keeps each pattern row (an owner store's rows, for writing them back).</summary>
    public IReadOnlyList<int> Rows { get; init; } = [];

    /// <summary>[b, 3, S, S]: each sample's user pattern (zero without a user); a grey photo gets the pattern's grey part, so it stays grey.</summary>
    public Tensor PerSample(Tensor grey)
    {
        using var scope = NewDisposeScope();
        var rows = Patterns.index_select(0, _rows).mul(_has);
        return where(grey, rows.mean([1], keepdim: true).expand_as(rows), rows).MoveToOuterDisposeScope();
    }

    /// <summary>The noise published with each photo: its user's pattern plus its own, cut so the image stays valid (|noise| ≤ Bound + the own bound).</summary>
    public Tensor Published(Tensor clean01, Tensor own)
    {
        using var scope = NewDisposeScope();
        using var grey = NoiseOptimizer.GreyMask(clean01);
        return clean01.Plus(PerSample(grey)).Plus(own).Clamped(0, 1).Minus(clean01).MoveToOuterDisposeScope();
    }

    /// <summary>The photos' own share, recovered from noise published earlier (within ±<paramref name="ownBound"/>).</summary>
    public Tensor Own(Tensor clean01, Tensor published, double ownBound)
    {
        using var scope = NewDisposeScope();
        using var grey = NoiseOptimizer.GreyMask(clean01);
        return published.Minus(PerSample(grey)).Clamped(-ownBound, ownBound).MoveToOuterDisposeScope();
    }

    /// <summary>One signed step on every pattern with the summed gradient of its user's photos (gradient wrt each photo's published noise).</summary>
    public void Step(Tensor sampleGradient, double stepSize, bool minimise)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var summed = zeros_like(Patterns).index_add(0, _rows, sampleGradient.mul(_has), KeptScalars.Of(1.0));
        var moved = Patterns.PlusScaled(summed.sign(), minimise ? -stepSize : stepSize).Clamped(-Bound, Bound);
        Patterns.Dispose();
        Patterns = moved.DetachFromDisposeScope();
    }

    public void Dispose()
    {
        Patterns.Dispose();
        _rows.Dispose();
        _has.Dispose();
    }
}
