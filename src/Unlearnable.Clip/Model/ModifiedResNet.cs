using TorchSharp;
using TorchSharp.Modules;
using Unlearnable.Clip.Runtime;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Unlearnable.Clip.Model;

#pragma warning disable IDE1006 // field names are open_clip's state-dict keys

/// <summary>
/// CLIP's bottleneck: strided blocks downsample with an average pool before the last 1×1 conv
/// (anti-aliasing) and in the shortcut, instead of a strided convolution.
/// </summary>
public sealed class Bottleneck : Module<Tensor, Tensor>
{
    public const int Expansion = 4;
    readonly Conv2d conv1, conv2, conv3;
    readonly BatchNorm bn1, bn2, bn3;
    readonly Module<Tensor, Tensor> avgpool;
    readonly Sequential? downsample;

    public Bottleneck(int inplanes, int planes, int stride) : base("bottleneck")
    {
        conv1 = Conv2d(inplanes, planes, 1, bias: false);
        bn1 = new BatchNorm(planes);
        conv2 = Conv2d(planes, planes, 3, padding: 1, bias: false);
        bn2 = new BatchNorm(planes);
        avgpool = stride > 1 ? AvgPool2d(stride) : Identity();
        conv3 = Conv2d(planes, planes * Expansion, 1, bias: false);
        bn3 = new BatchNorm(planes * Expansion);
        // OpenAI's names: the parameter-free pool is "-1", so the conv and BN are "0" and "1".
        if (stride > 1 || inplanes != planes * Expansion)
            downsample = Sequential(
                ("-1", AvgPool2d(stride)),
                ("0", Conv2d(inplanes, planes * Expansion, 1, stride: 1, bias: false)),
                ("1", new BatchNorm(planes * Expansion)));
        RegisterComponents();
        using var _ = no_grad();
        bn3.Weight.zero_(); // each residual branch starts as identity, as in open_clip
    }

    // downsample's layers in turn, the convolution in the scope's precision (ReducedPrecision).
    static Tensor Downsample(Tensor x, Sequential layers) =>
        ((Module<Tensor, Tensor>)layers[2]).forward(ReducedPrecision.Conv2d(((Module<Tensor, Tensor>)layers[0]).forward(x), (Conv2d)layers[1]));

    public override Tensor forward(Tensor x)
    {
        var identity = downsample is null ? x : Downsample(x, downsample);
        var y = functional.relu(bn1.forward(ReducedPrecision.Conv2d(x, conv1)));
        y = functional.relu(bn2.forward(ReducedPrecision.Conv2d(y, conv2)));
        y = bn3.forward(ReducedPrecision.Conv2d(avgpool.forward(y), conv3));
        return functional.relu(SkipErosion.Add(identity, y));
    }
}

/// <summary>
/// Attention pooling: the spatial mean is prepended as a query token; one multi-head attention
/// step of that query over all positions gives the image embedding.
/// </summary>
public sealed class AttentionPool2d : Module<Tensor, Tensor>
{
    readonly Parameter positional_embedding;
    readonly Linear k_proj, q_proj, v_proj, c_proj;
    readonly int _heads;

    public AttentionPool2d(int spatial, int width, int heads, int outputDim) : base("attnpool")
    {
        positional_embedding = new Parameter(randn(spatial * spatial + 1, width) / Math.Sqrt(width));
        k_proj = Linear(width, width);
        q_proj = Linear(width, width);
        v_proj = Linear(width, width);
        c_proj = Linear(width, outputDim);
        _heads = heads;
        RegisterComponents();
        using var _ = no_grad();
        double std = Math.Pow(width, -0.5);
        foreach (var linear in new[] { q_proj, k_proj, v_proj, c_proj }) init.normal_(linear.weight!, 0, std);
    }

    /// <param name="x">[batch, channels, h, w]</param>
    public override Tensor forward(Tensor x)
    {
        long b = x.shape[0], c = x.shape[1];
        var tokens = x.flatten(2).transpose(1, 2);                       // [b, hw, c]
        tokens = cat([tokens.mean([1], keepdim: true), tokens], 1);     // [b, hw+1, c]
        tokens = tokens.Plus(positional_embedding);
        long n = tokens.shape[1], d = c / _heads;
        var q = ReducedPrecision.Linear(tokens[.., ..1], q_proj.weight!, q_proj.bias).view(b, 1, _heads, d).transpose(1, 2);
        var k = ReducedPrecision.Linear(tokens, k_proj.weight!, k_proj.bias).view(b, n, _heads, d).transpose(1, 2);
        var v = ReducedPrecision.Linear(tokens, v_proj.weight!, v_proj.bias).view(b, n, _heads, d).transpose(1, 2);
        var pooled = functional.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, c);
        return ReducedPrecision.Linear(pooled, c_proj.weight!, c_proj.bias);
    }
}

/// <summary>CLIP's ModifiedResNet: 3-conv stem + avg pool, four bottleneck stages, attention pooling.</summary>
public sealed class ModifiedResNet : Module<Tensor, Tensor>, ISpatialVision
{
    readonly Conv2d conv1, conv2, conv3;
    readonly BatchNorm bn1, bn2, bn3;
    readonly AvgPool2d avgpool;
    readonly Sequential layer1, layer2, layer3, layer4;
    readonly AttentionPool2d attnpool;

    public ModifiedResNet(VisionConfig config, int outputDim) : base("visual")
    {
        int width = config.Width;
        if (config.Layers.Length != 4) throw new ArgumentException("ModifiedResNet needs four stage depths");
        if (config.ImageSize % 32 != 0) throw new ArgumentException($"ResNet image size must be a multiple of 32, got {config.ImageSize}");
        conv1 = Conv2d(3, width / 2, 3, stride: 2, padding: 1, bias: false);
        bn1 = new BatchNorm(width / 2);
        conv2 = Conv2d(width / 2, width / 2, 3, padding: 1, bias: false);
        bn2 = new BatchNorm(width / 2);
        conv3 = Conv2d(width / 2, width, 3, padding: 1, bias: false);
        bn3 = new BatchNorm(width);
        avgpool = AvgPool2d(2);

        int inplanes = width;
        Sequential Stage(int planes, int blocks, int stride)
        {
            var modules = new List<(string, Module<Tensor, Tensor>)> { ("0", new Bottleneck(inplanes, planes, stride)) };
            inplanes = planes * Bottleneck.Expansion;
            for (int i = 1; i < blocks; i++) modules.Add((i.ToString(), new Bottleneck(inplanes, planes, 1)));
            return Sequential(modules);
        }
        layer1 = Stage(width, config.Layers[0], 1);
        layer2 = Stage(width * 2, config.Layers[1], 2);
        layer3 = Stage(width * 4, config.Layers[2], 2);
        layer4 = Stage(width * 8, config.Layers[3], 2);
        attnpool = new AttentionPool2d(config.ImageSize / 32, config.FeatureWidth, config.ResNetHeads, outputDim);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => Pool(Features(x));

    /// <summary>
    /// The third stage's output [b, width·16, size/16, size/16], the input of the last stage: twice the last stage's
    /// resolution (4×4 instead of 2×2 at 64 pixels, 14×14 at 224), which a map of a small model needs.
    /// </summary>
    public Tensor Features(Tensor x)
    {
        x = functional.relu(bn1.forward(conv1.forward(x)));   // float32 in every precision: it reads the pixels
        x = functional.relu(bn2.forward(ReducedPrecision.Conv2d(x, conv2)));
        x = avgpool.forward(functional.relu(bn3.forward(ReducedPrecision.Conv2d(x, conv3))));
        return layer3.forward(layer2.forward(layer1.forward(x)));
    }

    public Tensor Pool(Tensor features) => attnpool.forward(layer4.forward(features));

    public Tensor Map(Tensor features) => features;
}
