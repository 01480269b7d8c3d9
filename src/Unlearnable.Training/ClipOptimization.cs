using TorchSharp;
using TorchSharp.Modules;
using Unlearnable.Clip.Model;
using static TorchSharp.torch;

namespace Unlearnable.Training;

/// <summary>The optimiser recipe every CLIP update here shares (hacker training and surrogate steps).</summary>
public static class ClipOptimization
{
    public static readonly double MaxLogitScale = Math.Log(100);

    /// <summary>AdamW with weight decay on weights only (not gains, biases or the logit scale), as open_clip does.</summary>
    public static OptimizerHelper AdamW(ClipModel model, double learningRate, double weightDecay, double beta1 = 0.9, double beta2 = 0.98, double epsilon = 1e-6)
    {
        var (decay, noDecay) = model.WeightDecayGroups();
        return optim.AdamW(
            [new AdamW.ParamGroup(decay, learningRate, beta1, beta2, epsilon, weightDecay, false, false),
             new AdamW.ParamGroup(noDecay, learningRate, beta1, beta2, epsilon, 0, false, false)],
            learningRate, beta1, beta2, epsilon, weightDecay);
    }

    /// <summary>
    /// Applies the step unless the loss or gradient is not finite (one NaN would poison the model
    /// for good; libtorch's oneDNN convolution backward has produced NaN on AVX-512 CPUs, see
    /// TorchRuntime), then clamps the logit scale to ln 100. Call it outside any dispose scope:
    /// AdamW creates its moment tensors on the first step.
    /// </summary>
    /// <returns>Whether the step was applied.</returns>
    public static bool StepIfFinite(OptimizerHelper optimizer, ClipModel model, double loss)
    {
        double gradNorm = nn.utils.clip_grad_norm_(model.parameters(), double.PositiveInfinity);
        if (!double.IsFinite(gradNorm) || !double.IsFinite(loss))
        {
            optimizer.zero_grad();
            return false;
        }
        optimizer.step();
        using (no_grad()) model.LogitScale.clamp_(0, MaxLogitScale);
        return true;
    }
}
