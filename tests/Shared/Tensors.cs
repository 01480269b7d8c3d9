using static TorchSharp.torch;

namespace Unlearnable.Tests;

static class Tensors
{
    /// <summary>Same shape and every element equal: what "the same bytes" means for a tensor.</summary>
    public static bool Same(Tensor a, Tensor b) => a.shape.SequenceEqual(b.shape) && a.sub(b).abs().max().item<float>() == 0;
}
