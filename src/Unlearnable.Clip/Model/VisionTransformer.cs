using TorchSharp;
using TorchSharp.Modules;
using Unlearnable.Clip.Runtime;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Unlearnable.Clip.Model;

#pragma warning disable IDE1006 // field names are open_clip's state-dict keys

/// <summary>CLIP's ViT: patch conv, class token, pre-LN transformer, LN on the class token, projection.</summary>
public sealed class VisionTransformer : Module<Tensor, Tensor>, ISpatialVision
{
    readonly Conv2d conv1;
    readonly Parameter class_embedding;
    readonly Parameter positional_embedding;
    readonly LayerNorm ln_pre;
    readonly Transformer transformer;
    readonly LayerNorm ln_post;
    readonly Parameter proj;
    readonly int _layers;

    public VisionTransformer(VisionConfig config, int outputDim, bool quickGelu) : base("visual")
    {
        if (config.ImageSize % config.PatchSize != 0)
            throw new ArgumentException($"image size {config.ImageSize} is not a multiple of patch size {config.PatchSize}");
        int width = config.Width, grid = config.ImageSize / config.PatchSize;
        double scale = Math.Pow(width, -0.5);
        conv1 = Conv2d(3, width, config.PatchSize, stride: config.PatchSize, bias: false);
        class_embedding = new Parameter(scale * randn(width));
        positional_embedding = new Parameter(scale * randn(grid * grid + 1, width));
        ln_pre = LayerNorm(width);
        transformer = new Transformer(width, config.Layers[0], config.Heads, causal: false, quickGelu);
        _layers = config.Layers[0];
        ln_post = LayerNorm(width);
        proj = new Parameter(scale * randn(width, outputDim));
        RegisterComponents();
        transformer.Initialise(width);
    }

    public override Tensor forward(Tensor x) => Pool(Features(x));

    /// <summary>
    /// The tokens [b, 1 + grid², width] that enter the last block: the class token, then the patches row by row. Not the
    /// last block's output, whose patch tokens nothing reads (only the class token is pooled), so their gradient is zero.
    /// </summary>
    public Tensor Features(Tensor x)
    {
        var patches = conv1.forward(x).flatten(2).transpose(1, 2);   // [b, grid², width]; float32 in every precision: it reads the pixels
        var cls = class_embedding.expand(patches.shape[0], 1, patches.shape[2]);
        var tokens = ln_pre.forward(cat([cls, patches], 1).Plus(positional_embedding));
        return transformer.Blocks(tokens, 0, _layers - 1);
    }

    public Tensor Pool(Tensor features) => ln_post.forward(transformer.Blocks(features, _layers - 1, _layers)[.., 0]).matmul(proj);

    public Tensor Map(Tensor features)
    {
        long b = features.shape[0], width = features.shape[2], grid = (long)Math.Round(Math.Sqrt(features.shape[1] - 1));
        return features[.., 1..].transpose(1, 2).reshape(b, width, grid, grid);
    }
}
