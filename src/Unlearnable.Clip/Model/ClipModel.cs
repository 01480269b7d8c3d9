using TorchSharp;
using TorchSharp.Modules;
using Unlearnable.Clip.Runtime;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Unlearnable.Clip.Model;

#pragma warning disable IDE1006 // field names are open_clip's state-dict keys

/// <summary>
/// CLIP with open_clip's parameter names: <c>visual.*</c>, <c>token_embedding</c>,
/// <c>positional_embedding</c>, <c>transformer.resblocks.N.*</c>, <c>ln_final</c>,
/// <c>text_projection</c>, <c>logit_scale</c>.
/// </summary>
public sealed class ClipModel : Module
{
    public ClipConfig Config { get; }

    readonly Module<Tensor, Tensor> visual;
    readonly Embedding token_embedding;
    readonly Parameter positional_embedding;
    readonly Transformer transformer;
    readonly LayerNorm ln_final;
    readonly Parameter text_projection;
    readonly Parameter logit_scale;

    static ClipModel() => Runtime.TorchRuntime.EnsureLoaded();

    public ClipModel(ClipConfig config) : base("clip")
    {
        Config = config;
        var text = config.Text;
        visual = config.Vision.Kind == VisionKind.ResNet
            ? new ModifiedResNet(config.Vision, config.EmbedDim)
            : new VisionTransformer(config.Vision, config.EmbedDim, config.QuickGelu);
        token_embedding = Embedding(text.VocabSize, text.Width);
        positional_embedding = new Parameter(empty(text.ContextLength, text.Width));
        transformer = new Transformer(text.Width, text.Layers, text.Heads, causal: true, config.QuickGelu);
        ln_final = LayerNorm(text.Width);
        text_projection = new Parameter(empty(text.Width, config.EmbedDim));
        logit_scale = new Parameter(tensor((float)Math.Log(1 / 0.07)));
        RegisterComponents();
        InitialiseText();
    }

    void InitialiseText()
    {
        using var _ = no_grad();
        init.normal_(token_embedding.weight!, 0, 0.02);
        init.normal_(positional_embedding, 0, 0.01);
        transformer.Initialise(Config.Text.Width);
        init.normal_(text_projection, 0, Math.Pow(Config.Text.Width, -0.5));
    }

    public Parameter LogitScale => logit_scale;
    public Tensor TokenEmbeddingMatrix => token_embedding.weight!;

    /// <summary>Image features (not normalised) from CLIP-normalised pixels [b, 3, size, size].</summary>
    public Tensor EncodeImage(Tensor pixels) => visual.forward(pixels);

    /// <summary>The image tower's last features (what Grad-CAM differentiates) and the image features pooled from them.</summary>
    public (Tensor Features, Tensor Embedding) EncodeImageWithFeatures(Tensor pixels)
    {
        var spatial = (ISpatialVision)visual;
        var features = spatial.Features(pixels);
        return (features, spatial.Pool(features));
    }

    /// <summary>Those features (or their gradient) laid out as a map [b, channels, h, w].</summary>
    public Tensor FeatureMap(Tensor features) => ((ISpatialVision)visual).Map(features);

    /// <summary>Token embeddings [b, ctx, width] for ids [b, ctx]: the input HotFlip differentiates.</summary>
    public Tensor EmbedTokens(Tensor ids) => token_embedding.forward(ids);

    /// <summary>Text features (not normalised) from ids [b, ctx].</summary>
    public Tensor EncodeText(Tensor ids) => EncodeTextEmbeddings(EmbedTokens(ids), TextFeatures.EndOfTextIndex(ids));

    /// <summary>
    /// Whether the text tower reads only the tokens up to the batch's last EOT (on by default). Exact: the tower
    /// is causal and reads each row's feature at its EOT, so no later position can change a feature or a gradient;
    /// captions of ~20 tokens then cost a quarter of the 77-token context. Off only to check that exactness.
    /// </summary>
    public bool TrimsTextContext { get; set; } = true;

    /// <summary>Text features from token embeddings [b, ctx, width], read at each row's EOT position.</summary>
    public Tensor EncodeTextEmbeddings(Tensor embeddings, Tensor eotIndex)
    {
        long used = TrimsTextContext ? TextFeatures.UsedLength(eotIndex) : embeddings.shape[1];
        var tokens = used < embeddings.shape[1] ? embeddings.narrow(1, 0, used) : embeddings;
        var hidden = transformer.forward(tokens.Plus(positional_embedding.narrow(0, 0, tokens.shape[1])));
        return TextFeatures.Pool(ln_final.forward(hidden), eotIndex, text_projection);
    }

    /// <summary>Image→text logits exp(s)·cos(I,T) [images, texts]; the transpose is text→image.</summary>
    public Tensor Logits(Tensor imageFeatures, Tensor textFeatures)
    {
        var i = functional.normalize(imageFeatures, dim: -1);
        var t = functional.normalize(textFeatures, dim: -1);
        return logit_scale.exp() * i.matmul(t.T);
    }

    /// <summary>Parameters AdamW should decay: weights of 2+ dims, not gains, biases, embeddings' scale or logit_scale.</summary>
    public (List<Parameter> Decay, List<Parameter> NoDecay) WeightDecayGroups()
    {
        var decay = new List<Parameter>();
        var noDecay = new List<Parameter>();
        foreach (var (name, p) in named_parameters())
        {
            bool exempt = p.dim() < 2 || name.Contains("bn", StringComparison.Ordinal) || name.Contains("ln", StringComparison.Ordinal)
                || name.EndsWith("bias", StringComparison.Ordinal) || name == "logit_scale";
            (exempt ? noDecay : decay).Add(p);
        }
        return (decay, noDecay);
    }
}
