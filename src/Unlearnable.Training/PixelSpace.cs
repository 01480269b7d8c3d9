using Unlearnable.Clip.Runtime;
using Unlearnable.Imaging;
using static TorchSharp.torch;

namespace Unlearnable.Training;

/// <summary>
/// Moves between CLIP-normalised pixels (what the model reads) and [0, 1] pixels (where the
/// L∞ bound on the noise lives): x_norm = (x01 − mean) / std per channel.
/// </summary>
public static class PixelSpace
{
    public static Tensor Normalize(Tensor x01) => x01.Minus(Mean(x01.device)).div(Std(x01.device));

    public static Tensor Unnormalize(Tensor normalized) => normalized.mul(Std(normalized.device)).Plus(Mean(normalized.device));

    static Tensor Mean(Device device) => tensor(ClipPreprocess.Mean, [1, 3, 1, 1]).to(device);
    static Tensor Std(Device device) => tensor(ClipPreprocess.Std, [1, 3, 1, 1]).to(device);
}
