using Unlearnable.Tests;
using Unlearnable.Clip.Model;
using Unlearnable.Clip.Runtime;
using Unlearnable.Clip.Text;
using static TorchSharp.torch;

namespace Unlearnable.Clip.Tests;

/// <summary>bfloat16 products (<see cref="ReducedPrecision"/>): close to float32, gradients to the inputs only, and nothing left behind.</summary>
public class MatmulPrecisionTests
{
    static float Cosine(Tensor a, Tensor b) => nn.functional.cosine_similarity(a.flatten(), b.flatten(), dim: 0).item<float>();

    [Theory]
    [InlineData("tiny")]
    [InlineData("tiny-vit")]
    public void BFloat16FeaturesAndPixelGradientsStayCloseToFloat32(string preset)
    {
        TorchRuntime.Seed(7);
        using var model = new ClipModel(ClipPresets.Get(preset));
        model.eval();
        int size = model.Config.Vision.ImageSize;
        var pixels = randn(3, 3, size, size);
        var ids = TextTensors.Batch(["a photo of a red door", "two dogs on a beach", "a bowl of soup"], model.Config.Text.ContextLength, CPU);

        // The loss backpropagated to the pixels and, where they are in the graph, to the weights.
        (Tensor Image, Tensor Text, Tensor Gradient) Compute()
        {
            model.zero_grad();
            var x = pixels.detach().requires_grad_(true);
            var image = model.EncodeImage(x);
            var text = model.EncodeText(ids);
            ContrastiveLoss.Compute(model.Logits(image, text)).backward();
            return (image.detach(), text.detach(), x.grad!.clone());
        }
        var roundedWeights = model.named_parameters().Where(p => p.name.EndsWith("c_fc.weight", StringComparison.Ordinal) || p.name.EndsWith("in_proj_weight", StringComparison.Ordinal)
            || p.name.EndsWith("q_proj.weight", StringComparison.Ordinal) || p.name == "visual.conv2.weight").Select(p => p.parameter).ToList();
        Assert.NotEmpty(roundedWeights);

        var exact = Compute();
        Assert.All(roundedWeights, w => Assert.True(w.grad is not null && w.grad.abs().max().item<float>() > 0, "float32 gave a weight no gradient"));
        (Tensor Image, Tensor Text, Tensor Gradient) rounded;
        using (ReducedPrecision.Enter(MatmulPrecision.Bfloat16))
        {
            rounded = Compute();
            // Rounded weights are constants of the scope: what PGD and the search differentiate is the input alone.
            Assert.All(roundedWeights, w => Assert.True(w.grad is null || w.grad.abs().max().item<float>() == 0, "a weight received a gradient inside the scope"));
        }
        var after = Compute();

        Assert.False(Tensors.Same(rounded.Image, exact.Image), "the scope changed no product");
        Assert.True(Cosine(rounded.Image, exact.Image) > 0.99, $"image features: cosine {Cosine(rounded.Image, exact.Image)}");
        Assert.True(Cosine(rounded.Text, exact.Text) > 0.99, $"text features: cosine {Cosine(rounded.Text, exact.Text)}");
        // What PGD follows is the gradient's sign, pixel by pixel: most pixels must move the same way.
        double agree = rounded.Gradient.sign().eq(exact.Gradient.sign()).to(ScalarType.Float32).mean().item<float>();
        Assert.True(agree > 0.9, $"only {agree:P0} of the pixel gradient's signs agree with float32's");
        Assert.True(Tensors.Same(after.Image, exact.Image) && Tensors.Same(after.Gradient, exact.Gradient), "float32 changed after the scope ended");
    }

    [Fact]
    public void Float32IsNoScopeAndScopesEndInOrder()
    {
        var x = randn(4, 8);
        var w = randn(5, 8);
        using (ReducedPrecision.Enter(MatmulPrecision.Float32))
            Assert.True(Tensors.Same(ReducedPrecision.Linear(x, w, null), nn.functional.linear(x, w)));
        var outer = ReducedPrecision.Enter(MatmulPrecision.Bfloat16);
        var inner = ReducedPrecision.Enter(MatmulPrecision.Bfloat16);
        Assert.Throws<InvalidOperationException>(outer.Dispose);
        inner.Dispose();
        outer.Dispose();
        Assert.True(Tensors.Same(ReducedPrecision.Linear(x, w, null), nn.functional.linear(x, w)), "a product stayed rounded after its scopes ended");
    }
}
