using System.Collections.Concurrent;
using TorchSharp;
using static TorchSharp.torch;

namespace Unlearnable.Clip.Runtime;

/// <summary>
/// Numbers for libtorch that cannot be freed while libtorch reads them.
/// TorchSharp wraps every number it passes to libtorch in a finalisable <see cref="Scalar"/>, even
/// the alpha = 1 inside <c>a + b</c>, and the wrapper is unreachable from the moment its handle
/// is passed. When another thread triggers a GC during the native call, the finaliser thread can
/// free it first: libtorch then throws "alpha must not be a floating point number" or "toFloat",
/// or computes with garbage (measured: 105 of 8,000 four-op chains with a GC running alongside;
/// 0 with kept scalars). Scalars from here are rooted for the life of the process.
/// </summary>
public static class KeptScalars
{
    static readonly ConcurrentDictionary<double, Scalar> Reals = new();
    static readonly ConcurrentDictionary<long, Scalar> Integers = new();

    /// <summary>Integer one: a valid alpha for float and integer tensors alike.</summary>
    public static readonly Scalar One = Of(1L);
    public static readonly Scalar MinusOne = Of(-1L);

    /// <summary>For constants and option values (a handful per process), not per-step numbers.</summary>
    public static Scalar Of(double value) => Reals.GetOrAdd(value, v => v.ToScalar());

    public static Scalar Of(long value) => Integers.GetOrAdd(value, v => v.ToScalar());

    /// <summary>0, 1, …, n − 1 as int64 (a batch's labels or row indices).</summary>
    public static Tensor Range(long n, Device device) => arange(Of(0L), Of(n), One, dtype: int64, device: device);
}

/// <summary>
/// Arithmetic that passes only kept scalars to libtorch; use these instead of the operators in
/// code that may run while other threads allocate (the sidecar's PGD path and the model).
/// </summary>
public static class SafeOps
{
    public static Tensor Plus(this Tensor a, Tensor b) => a.add(b, KeptScalars.One);

    public static Tensor Minus(this Tensor a, Tensor b) => a.add(b, KeptScalars.MinusOne);

    /// <summary>a + scale·b in one call.</summary>
    public static Tensor PlusScaled(this Tensor a, Tensor b, double scale) => a.add(b, KeptScalars.Of(scale));

    public static Tensor Times(this Tensor a, double factor) => a.mul(KeptScalars.Of(factor));

    public static Tensor Clamped(this Tensor a, double min, double max) => a.clamp(KeptScalars.Of(min), KeptScalars.Of(max));
}
