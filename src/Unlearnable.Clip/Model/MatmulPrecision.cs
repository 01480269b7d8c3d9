using TorchSharp;
using static TorchSharp.torch;

namespace Unlearnable.Clip.Model;

/// <summary>The arithmetic of a surrogate's matrix products while protection optimises against it.</summary>
public enum MatmulPrecision
{
    /// <summary>float32 throughout: the authors' arithmetic (the default).</summary>
    Float32,

    /// <summary>
    /// The linear and convolution layers' products in bfloat16 (float32 kept for everything else: the residual stream, layer norms,
    /// attention, losses, the noise). On CPUs with AVX-512 BF16 these run ~4× faster than float32
    /// (docs/performance.md); the noise then differs from float32's in its rounding.
    /// </summary>
    Bfloat16,
}

/// <summary>
/// A scope in which the models' linear and convolution layers multiply in <see cref="MatmulPrecision.Bfloat16"/>: inputs and weights
/// are rounded to bfloat16, the product comes back as float32. Weights are cast once per scope and reused, so a scope
/// is for frozen weights only (a PGD run, a trigger search); gradients flow to the inputs, never to the weights.
/// Scopes are per thread, like the torch work they cover (each host's torch work runs on one thread).
/// </summary>
public sealed class ReducedPrecision : IDisposable
{
    [ThreadStatic] static ReducedPrecision? _current;

    readonly ReducedPrecision? _outer;
    readonly Dictionary<IntPtr, Tensor> _weights = [];

    ReducedPrecision()
    {
        _outer = _current;
        _current = this;
    }

    /// <summary>A scope for this precision: products in bfloat16 until disposed, or nothing for float32.</summary>
    public static IDisposable Enter(MatmulPrecision precision) => precision == MatmulPrecision.Bfloat16 ? new ReducedPrecision() : NoScope.Instance;

    /// <summary>x·Wᵀ + b, in the current scope's precision.</summary>
    public static Tensor Linear(Tensor x, Tensor weight, Tensor? bias)
    {
        if (_current is not { } scope || x.dtype != ScalarType.Float32) return nn.functional.linear(x, weight, bias);
        // functional.linear, not matmul: libtorch's bfloat16 matmul falls back to a naive kernel (1 GFLOP/s here).
        return nn.functional.linear(x.to(ScalarType.BFloat16), scope.Rounded(weight), bias is null ? null : scope.Rounded(bias))
            .to(ScalarType.Float32);
    }

    /// <summary>
    /// The convolution, in the current scope's precision. Not for a layer that reads the pixels: rounding them to bfloat16
    /// (steps of ~0.008 at CLIP's normalised values) would hide the noise's own 1/255 steps, so those layers stay float32.
    /// </summary>
    public static Tensor Conv2d(Tensor x, TorchSharp.Modules.Conv2d conv)
    {
        if (_current is not { } scope || x.dtype != ScalarType.Float32 || conv.padding is null || conv.padding_mode != PaddingModes.Zeros) return conv.forward(x);
        return nn.functional.conv2d(x.to(ScalarType.BFloat16), scope.Rounded(conv.weight!), conv.bias is null ? null : scope.Rounded(conv.bias),
            conv.stride, conv.padding, conv.dilation, conv.groups).to(ScalarType.Float32);
    }

    Tensor Rounded(Tensor weight)
    {
        if (!_weights.TryGetValue(weight.Handle, out var rounded))
        {
            using (no_grad()) rounded = weight.detach().to(ScalarType.BFloat16);
            rounded.DetachFromDisposeScope();
            _weights[weight.Handle] = rounded;
        }
        return rounded;
    }

    public void Dispose()
    {
        if (_current != this) throw new InvalidOperationException("reduced-precision scopes must end in the order they began");
        _current = _outer;
        foreach (var rounded in _weights.Values) rounded.Dispose();
        _weights.Clear();
    }

    sealed class NoScope : IDisposable
    {
        public static readonly NoScope Instance = new();
        public void Dispose() { }
    }
}
