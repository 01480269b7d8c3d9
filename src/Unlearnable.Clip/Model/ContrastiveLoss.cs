using Unlearnable.Clip.Runtime;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Unlearnable.Clip.Model;

/// <summary>Symmetric InfoNCE: (CE(logits_i2t, diag) + CE(logits_t2i, diag)) / 2.</summary>
public static class ContrastiveLoss
{
    public static Tensor Compute(Tensor logitsImageToText)
    {
        var labels = Labels(logitsImageToText);
        return functional.cross_entropy(logitsImageToText, labels).Plus(functional.cross_entropy(logitsImageToText.T, labels)).Times(0.5);
    }

    /// <summary>Per-pair loss (no mean), for scoring and reporting individual samples.</summary>
    public static Tensor PerSample(Tensor logitsImageToText)
    {
        var labels = Labels(logitsImageToText);
        return functional.cross_entropy(logitsImageToText, labels, reduction: Reduction.None)
            .Plus(functional.cross_entropy(logitsImageToText.T, labels, reduction: Reduction.None)).Times(0.5);
    }

    /// <summary>0..n−1: pair i is the positive for row i.</summary>
    static Tensor Labels(Tensor logits) => KeptScalars.Range(logits.shape[0], logits.device);
}
