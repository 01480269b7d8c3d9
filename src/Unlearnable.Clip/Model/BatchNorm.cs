using TorchSharp;
using TorchSharp.Modules;
using Unlearnable.Clip.Runtime;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Unlearnable.Clip.Model;

/// <summary>
/// 2-D batch norm with PyTorch's parameter and buffer names (weight, bias, running_mean,
/// running_var, num_batches_tracked). TorchSharp's BatchNorm2d counts batches with an
/// on-the-fly Scalar that a GC on another thread can free mid-call (see KeptScalars).
/// </summary>
public sealed class BatchNorm : nn.Module<Tensor, Tensor>
{
    const double Momentum = 0.1, Epsilon = 1e-5;

    readonly Parameter weight;

    /// <summary>The per-channel gain γ.</summary>
    public Parameter Weight => weight;
    readonly Parameter bias;
    readonly Tensor running_mean;
    readonly Tensor running_var;
    readonly Tensor num_batches_tracked;

    public BatchNorm(long features) : base("BatchNorm2d")
    {
        weight = new Parameter(ones(features));
        bias = new Parameter(zeros(features));
        running_mean = zeros(features);
        running_var = ones(features);
        num_batches_tracked = zeros(1, dtype: int64).squeeze();
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        if (training)
            using (no_grad()) num_batches_tracked.add_(KeptScalars.One, KeptScalars.One);
        return functional.batch_norm(x, running_mean, running_var, weight, bias, training, Momentum, Epsilon);
    }
}
