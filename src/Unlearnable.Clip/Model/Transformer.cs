using TorchSharp;
using TorchSharp.Modules;
using Unlearnable.Clip.Runtime;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Unlearnable.Clip.Model;

#pragma warning disable IDE1006 // field names are open_clip's state-dict keys

/// <summary>Multi-head self-attention with a packed q/k/v projection (nn.MultiheadAttention's keys).</summary>
public sealed class SelfAttention : Module<Tensor, Tensor>
{
    readonly Parameter in_proj_weight;
    readonly Parameter in_proj_bias;
    readonly Linear out_proj;
    readonly int _heads;
    readonly bool _causal;

    public SelfAttention(int width, int heads, bool causal) : base("attn")
    {
        if (width % heads != 0) throw new ArgumentException($"width {width} is not divisible by {heads} heads");
        _heads = heads;
        _causal = causal;
        in_proj_weight = new Parameter(empty(3 * width, width));
        in_proj_bias = new Parameter(zeros(3 * width));
        out_proj = Linear(width, width);
        RegisterComponents();
    }

    /// <param name="x">[batch, tokens, width]</param>
    public override Tensor forward(Tensor x)
    {
        var (b, n, w) = (x.shape[0], x.shape[1], x.shape[2]);
        var qkv = ReducedPrecision.Linear(x, in_proj_weight, in_proj_bias).view(b, n, 3, _heads, w / _heads).permute(2, 0, 3, 1, 4);
        var attended = functional.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], is_casual: _causal);
        return ReducedPrecision.Linear(attended.transpose(1, 2).reshape(b, n, w), out_proj.weight!, out_proj.bias);
    }

    public void Initialise(double inStd, double outStd)
    {
        using var _ = no_grad();
        init.normal_(in_proj_weight, 0, inStd);
        in_proj_bias.zero_();
        init.normal_(out_proj.weight!, 0, outStd);
        out_proj.bias!.zero_();
    }
}

/// <summary>CLIP's pre-LN block: x + attn(ln_1(x)), then x + mlp(ln_2(x)).</summary>
public sealed class ResidualAttentionBlock : Module<Tensor, Tensor>
{
    readonly LayerNorm ln_1;
    readonly SelfAttention attn;
    readonly LayerNorm ln_2;
    readonly Sequential mlp;

    public ResidualAttentionBlock(int width, int heads, bool causal, bool quickGelu) : base("resblock")
    {
        ln_1 = LayerNorm(width);
        attn = new SelfAttention(width, heads, causal);
        ln_2 = LayerNorm(width);
        mlp = Sequential(
            ("c_fc", Linear(width, width * 4)),
            ("gelu", quickGelu ? new QuickGelu() : GELU()),
            ("c_proj", Linear(width * 4, width)));
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        x = SkipErosion.Add(x, attn.forward(ln_1.forward(x)));
        return SkipErosion.Add(x, Mlp(ln_2.forward(x)));
    }

    // mlp's layers in turn, each product in the scope's precision (ReducedPrecision).
    Tensor Mlp(Tensor x)
    {
        var (fc, activation, proj) = ((Linear)mlp[0], (Module<Tensor, Tensor>)mlp[1], (Linear)mlp[2]);
        return ReducedPrecision.Linear(activation.forward(ReducedPrecision.Linear(x, fc.weight!, fc.bias)), proj.weight!, proj.bias);
    }

    public void Initialise(int width, int layers)
    {
        double projStd = Math.Pow(width, -0.5) * Math.Pow(2 * layers, -0.5);
        attn.Initialise(Math.Pow(width, -0.5), projStd);
        using var _ = no_grad();
        init.normal_(((Linear)mlp[0]).weight!, 0, Math.Pow(2 * width, -0.5));
        init.normal_(((Linear)mlp[2]).weight!, 0, projStd);
    }
}

/// <summary>x·sigmoid(1.702x): the activation OpenAI's CLIP weights were trained with.</summary>
public sealed class QuickGelu : Module<Tensor, Tensor>
{
    public QuickGelu() : base("quick_gelu") { }
    public override Tensor forward(Tensor x) => x.mul(sigmoid(x.Times(1.702)));
}

/// <summary>A stack of residual attention blocks ("transformer.resblocks.N").</summary>
public sealed class Transformer : Module<Tensor, Tensor>
{
    readonly ModuleList<ResidualAttentionBlock> resblocks;

    public Transformer(int width, int layers, int heads, bool causal, bool quickGelu) : base("transformer")
    {
        resblocks = new ModuleList<ResidualAttentionBlock>(
            Enumerable.Range(0, layers).Select(_ => new ResidualAttentionBlock(width, heads, causal, quickGelu)).ToArray());
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => Blocks(x, 0, resblocks.Count);

    /// <summary>Blocks [from, to) only: a caller may read (and differentiate) the tokens between two blocks.</summary>
    public Tensor Blocks(Tensor x, int from, int to)
    {
        for (int i = from; i < to; i++) x = resblocks[i].forward(x);
        return x;
    }

    public void Initialise(int width)
    {
        foreach (var block in resblocks) block.Initialise(width, resblocks.Count);
    }
}
