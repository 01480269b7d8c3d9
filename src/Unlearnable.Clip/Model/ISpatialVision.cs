using static TorchSharp.torch;

namespace Unlearnable.Clip.Model;

/// <summary>
/// An image tower split where attention maps read it: the last features that still have a place in the image,
/// then the pooling that makes the image embedding (forward = Pool(Features(x))).
/// </summary>
public interface ISpatialVision
{
    Tensor Features(Tensor pixels);

    Tensor Pool(Tensor features);

    /// <summary>Features of the same shape as <see cref="Features"/>' (or their gradient) as a map [b, channels, h, w].</summary>
    Tensor Map(Tensor features);
}
