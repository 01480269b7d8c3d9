using Unlearnable.Clip.Runtime;
using static TorchSharp.torch;

namespace Unlearnable.Clip.Model;

/// <summary>
/// Skip-connection erosion (Ghost Networks, Li et al., AAAI 2020): within a scope, every residual block adds its branch to
/// its input scaled by a λ drawn from [1 − ξ, 1 + ξ] for that block and forward. Each scope is then, in effect, another
/// member of a cheap ensemble of perturbed copies of the one model, which is what noise that must carry to models it never
/// saw is optimised against. λ is drawn on a grid of ξ/16 steps (the scalars libtorch reads stay few). Scopes are per
/// thread, like <see cref="ReducedPrecision"/>; outside one the blocks are the model's own.
/// </summary>
public sealed class SkipErosion : IDisposable
{
    const int Grid = 16;
    [ThreadStatic] static SkipErosion? _current;

    readonly SkipErosion? _outer;
    readonly Random _draws;
    readonly double _strength;

    SkipErosion(double strength, int seed)
    {
        (_strength, _draws, _outer) = (strength, new Random(seed), _current);
        _current = this;
    }

    /// <param name="strength">ξ in [0, 1): how far each skip may be scaled; 0 enters no scope.</param>
    /// <param name="seed">Seeds the scope's draws, so a step repeats.</param>
    public static IDisposable Enter(double strength, int seed)
    {
        if (!(strength is >= 0 and < 1)) throw new ArgumentOutOfRangeException(nameof(strength), strength, "skip erosion must be in [0, 1)");
        return strength > 0 ? new SkipErosion(strength, seed) : NoScope.Instance;
    }

    /// <summary>The block's output: <paramref name="skip"/> (its input) plus <paramref name="branch"/>, the skip scaled by this scope's next λ.</summary>
    public static Tensor Add(Tensor skip, Tensor branch)
    {
        if (_current is not { } scope) return skip.Plus(branch);
        double lambda = 1 + scope._strength * scope._draws.Next(-Grid, Grid + 1) / Grid;
        return branch.PlusScaled(skip, lambda);
    }

    public void Dispose()
    {
        if (_current != this) throw new InvalidOperationException("skip-erosion scopes must end in the order they began");
        _current = _outer;
    }

    sealed class NoScope : IDisposable
    {
        public static readonly NoScope Instance = new();
        public void Dispose() { }
    }
}
