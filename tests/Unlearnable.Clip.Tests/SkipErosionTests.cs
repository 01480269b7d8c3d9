using Unlearnable.Tests;
using Unlearnable.Clip.Model;
using Unlearnable.Clip.Runtime;
using Unlearnable.Clip.Text;
using static TorchSharp.torch;

namespace Unlearnable.Clip.Tests;

/// <summary>Skip-connection erosion (<see cref="SkipErosion"/>): a scope perturbs every residual block, repeats by seed, and leaves the model as it was.</summary>
public class SkipErosionTests
{
    [Theory]
    [InlineData("tiny")]
    [InlineData("tiny-vit")]
    public void AScopeScalesTheSkipsRepeatablyAndLeavesTheModelAsItWas(string preset)
    {
        TorchRuntime.Seed(7);
        using var model = new ClipModel(ClipPresets.Get(preset));
        model.eval();
        int size = model.Config.Vision.ImageSize;
        using var pixels = randn(2, 3, size, size);
        using var ids = TextTensors.Batch(["a photo of a red door", "two dogs on a beach"], model.Config.Text.ContextLength, CPU);
        using var _ = no_grad();
        (Tensor Image, Tensor Text) Encode() => (model.EncodeImage(pixels), model.EncodeText(ids));

        var plain = Encode();
        (Tensor Image, Tensor Text) Eroded(double strength, int seed)
        {
            using (SkipErosion.Enter(strength, seed)) return Encode();
        }
        var eroded = Eroded(0.3, seed: 1);
        Assert.False(Tensors.Same(plain.Image, eroded.Image), "no image block was eroded");
        Assert.False(Tensors.Same(plain.Text, eroded.Text), "no text block was eroded");
        // Still the model: features stay close to its own (λ within ±0.3 of 1 at every block).
        Assert.True(nn.functional.cosine_similarity(plain.Image.flatten(), eroded.Image.flatten(), dim: 0).item<float>() > 0.5);
        Assert.True(Tensors.Same(eroded.Image, Eroded(0.3, seed: 1).Image), "the same seed must erode the same way");
        Assert.False(Tensors.Same(eroded.Image, Eroded(0.3, seed: 2).Image), "another seed drew the same λs");
        Assert.True(Tensors.Same(plain.Image, Eroded(0, seed: 1).Image), "ξ 0 must leave the model as it is");
        Assert.True(Tensors.Same(plain.Image, Encode().Image), "the model stayed eroded after its scope");
    }

    [Fact]
    public void StrengthsOutOfRangeAndScopesEndedOutOfOrderAreRefused()
    {
        Assert.Equal("strength", Assert.Throws<ArgumentOutOfRangeException>(() => SkipErosion.Enter(1, 0)).ParamName);
        Assert.Throws<ArgumentOutOfRangeException>(() => SkipErosion.Enter(-0.1, 0));
        var outer = SkipErosion.Enter(0.2, 0);
        var inner = SkipErosion.Enter(0.2, 1);
        try { Assert.Throws<InvalidOperationException>(() => outer.Dispose()); }
        finally
        {
            inner.Dispose();   // a scope left open would erode later tests' models on this thread
            outer.Dispose();
        }
    }
}
