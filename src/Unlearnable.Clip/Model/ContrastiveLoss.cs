using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Unlearnable.Clip.Model;

/// <summary>Symmetric InfoNCE: (CE(logits_i2t, diag) + CE(logits_t2i, diag)) / 2.</summary>
public static class ContrastiveLoss
{
    public static Tensor Compute(Tensor logitsImageToText)
    {
        var labels = arange(logitsImageToText.shape[0], dtype: int64, device: logitsImageToText.device);
        return (functional.cross_entropy(logitsImageToText, labels) + functional.cross_entropy(logitsImageToText.T, labels)) / 2;
    }

    /// <summary>Per-pair loss (no mean), for scoring and reporting individual samples.</summary>
    public static Tensor PerSample(Tensor logitsImageToText)
    {
        var labels = arange(logitsImageToText.shape[0], dtype: int64, device: logitsImageToText.device);
        return (functional.cross_entropy(logitsImageToText, labels, reduction: Reduction.None)
              + functional.cross_entropy(logitsImageToText.T, labels, reduction: Reduction.None)) / 2;
    }
}
