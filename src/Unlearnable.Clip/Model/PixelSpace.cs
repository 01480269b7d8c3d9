using Unlearnable.Clip.Runtime;
using static TorchSharp.torch;

namespace Unlearnable.Clip.Model;

/// <summary>
/// Moves between CLIP-normalised pixels (what the model reads) and [0, 1] pixels (where the
/// L∞ bound on the noise lives): x_norm = (x01 − mean) / std per channel, with CLIP's channel
/// statistics (the image library's preprocessing normalises with the same numbers; a test holds them equal).
/// </summary>
public static class PixelSpace
{
    public static readonly float[] Mean = [0.48145466f, 0.4578275f, 0.40821073f];
    public static readonly float[] Std = [0.26862954f, 0.26130258f, 0.27577711f];

    public static Tensor Normalize(Tensor x01) => x01.Minus(MeanOn(x01.device)).div(StdOn(x01.device));

    public static Tensor Unnormalize(Tensor normalized) => normalized.mul(StdOn(normalized.device)).Plus(MeanOn(normalized.device));

    static Tensor MeanOn(Device device) => tensor(Mean, [1, 3, 1, 1]).to(device);
    static Tensor StdOn(Device device) => tensor(Std, [1, 3, 1, 1]).to(device);
}
