using TorchSharp;
using Unlearnable.Clip.Model;
using Unlearnable.Clip.Runtime;
using static TorchSharp.torch;

namespace Unlearnable.Training;

/// <summary>The optimiser recipe every CLIP update here shares (hacker training and surrogate steps).</summary>
public static class ClipOptimization
{
    public static readonly double MaxLogitScale = Math.Log(100);

    /// <summary>
    /// Applies the step unless the loss or gradient is not finite (one NaN would poison the model
    /// for good; libtorch's oneDNN convolution backward has produced NaN on AVX-512 CPUs, see
    /// TorchRuntime), then clamps the logit scale to ln 100. Call it outside any dispose scope:
    /// the optimiser creates its moment tensors on the first step.
    /// </summary>
    /// <returns>Whether the step was applied.</returns>
    public static bool StepIfFinite(ClipAdamW optimizer, ClipModel model, double loss)
    {
        double gradNorm = nn.utils.clip_grad_norm_(model.parameters(), double.PositiveInfinity);
        if (!double.IsFinite(gradNorm) || !double.IsFinite(loss))
        {
            optimizer.ZeroGrad();
            return false;
        }
        optimizer.Step();
        using (no_grad()) model.LogitScale.clamp_(KeptScalars.Of(0.0), KeptScalars.Of(MaxLogitScale));
        return true;
    }
}
