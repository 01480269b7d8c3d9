using TorchSharp;
using Unlearnable.Clip.Model;
using static TorchSharp.torch;

namespace Unlearnable.Clip.Tests;

public class ModelTests
{
    [Fact]
    public void StateDictUsesOpenAisKeyNames()
    {
        var keys = new ClipModel(ClipPresets.Get("tiny")).state_dict().Keys.ToHashSet();
        foreach (var key in new[]
        {
            "visual.conv1.weight", "visual.bn1.running_mean", "visual.conv3.weight", "visual.layer1.0.conv1.weight",
            "visual.layer2.0.downsample.0.weight", "visual.layer2.0.downsample.1.running_var", "visual.attnpool.positional_embedding",
            "visual.attnpool.q_proj.weight", "visual.attnpool.c_proj.bias", "token_embedding.weight", "positional_embedding",
            "transformer.resblocks.0.attn.in_proj_weight", "transformer.resblocks.0.attn.in_proj_bias",
            "transformer.resblocks.1.attn.out_proj.weight", "transformer.resblocks.0.ln_1.weight", "transformer.resblocks.0.mlp.c_fc.weight",
            "transformer.resblocks.0.mlp.c_proj.bias", "ln_final.weight", "text_projection", "logit_scale",
        })
            Assert.Contains(key, keys);
        // OpenAI's shortcut: the parameter-free pool is "-1", so no ".downsample.2." exists.
        Assert.DoesNotContain(keys, k => k.Contains(".downsample.2.", StringComparison.Ordinal));
        var vit = new ClipModel(ClipPresets.Get("tiny-vit")).state_dict().Keys.ToHashSet();
        foreach (var key in new[] { "visual.class_embedding", "visual.positional_embedding", "visual.ln_pre.weight", "visual.proj",
                     "visual.transformer.resblocks.2.attn.in_proj_weight", "visual.ln_post.bias" })
            Assert.Contains(key, vit);
    }

    [Theory]
    [InlineData("rn50", 102_007_137)]
    [InlineData("rn101", 119_688_033)]
    [InlineData("vitb32", 151_277_313)]
    public void PaperSizedPresetsHaveOpenClipsParameterCounts(string preset, long expected)
    {
        using var model = new ClipModel(ClipPresets.Get(preset));
        Assert.Equal(expected, model.parameters().Sum(p => p.numel()));
    }

    /// <summary>
    /// open_clip's model profile (docs/model_profile.csv, fvcore, a multiply-add as 2): image and 77-token text GFLOPs.
    /// Its ResNet figures are higher: its attention pool projects a query at every position where ours projects the one
    /// that is read (2·49·2048² ≈ 0.4 GFLOP), and fvcore counts batch norms.
    /// </summary>
    [Theory]
    [InlineData("vitb32", 8.82, 5.96, 0.02)]
    [InlineData("rn50", 12.22, 5.96, 0.06)]
    [InlineData("rn101", 19.54, 5.96, 0.06)]
    public void FlopCountsAgreeWithOpenClipsProfile(string preset, double imageGflops, double textGflops, double imageBelow)
    {
        var config = ClipPresets.Get(preset);
        Assert.InRange(ClipFlops.Image(config) / 1e9, imageGflops * (1 - imageBelow), imageGflops * 1.01);
        Assert.InRange(ClipFlops.Text(config, 77) / 1e9, textGflops * 0.99, textGflops * 1.01);
        Assert.True(ClipFlops.Text(config, 20) < ClipFlops.Text(config, 77) / 3, "a 20-token caption costs under a third of the full context");
    }

    [Fact]
    public void UnknownPresetNamesTheKnownOnes()
    {
        var e = Assert.Throws<ArgumentException>(() => ClipPresets.Get("rn9000"));
        Assert.Contains("rn9000", e.Message);
        Assert.Contains("tiny", e.Message);
    }

    [Theory]
    [InlineData("tiny")]
    [InlineData("tiny-vit")]
    public void FeaturesHaveTheJointWidth(string preset)
    {
        using var model = new ClipModel(ClipPresets.Get(preset));
        model.eval();
        using var _ = no_grad();
        var size = model.Config.Vision.ImageSize;
        Assert.Equal([3L, model.Config.EmbedDim], model.EncodeImage(randn(3, 3, size, size)).shape);
        Assert.Equal([2L, model.Config.EmbedDim], model.EncodeText(TokenIds.Of(model, "a cat", "a dog")).shape);
        Assert.Equal(Math.Log(1 / 0.07), model.LogitScale.item<float>(), 5);
    }

    [Fact]
    public void TextFromEmbeddingsEqualsTextFromIds()
    {
        using var model = new ClipModel(ClipPresets.Get("tiny"));
        model.eval();
        var ids = TokenIds.Of(model, "a red circle on a striped background", "two shapes");
        using var _ = no_grad();
        var fromIds = model.EncodeText(ids);
        var fromEmbeddings = model.EncodeTextEmbeddings(model.EmbedTokens(ids), TextFeatures.EndOfTextIndex(ids));
        Assert.True(fromIds.eq(fromEmbeddings).all().item<bool>());
    }

    [Fact]
    public void GradientReachesTheTokenEmbeddingsBeforeEotOnly()
    {
        using var model = new ClipModel(ClipPresets.Get("tiny"));
        model.eval();
        var ids = TokenIds.Of(model, "the the the a cat");
        var embeddings = model.EmbedTokens(ids).detach().requires_grad_(true);
        model.EncodeTextEmbeddings(embeddings, TextFeatures.EndOfTextIndex(ids)).sum().backward();
        var perPosition = embeddings.grad!.abs().sum(-1)[0];
        int eot = (int)TextFeatures.EndOfTextIndex(ids)[0].item<long>();
        Assert.True(perPosition[1].item<float>() > 0, "trigger position 1 must receive gradient");
        Assert.Equal(0f, perPosition[eot + 1].item<float>()); // causal mask: padding after EOT cannot matter
    }

    [Fact]
    public void ContrastiveLossIsSymmetricInfoNce()
    {
        var logits = tensor(new float[] { 5, 1, 0, 0, 4, 2, 1, 0, 3 }, [3, 3]);
        double manual = 0;
        var l = logits.data<float>().ToArray();
        for (int i = 0; i < 3; i++)
        {
            double row = Math.Exp(l[i * 3]) + Math.Exp(l[i * 3 + 1]) + Math.Exp(l[i * 3 + 2]);
            double col = Math.Exp(l[i]) + Math.Exp(l[3 + i]) + Math.Exp(l[6 + i]);
            manual += -Math.Log(Math.Exp(l[i * 4]) / row) - Math.Log(Math.Exp(l[i * 4]) / col);
        }
        Assert.Equal(manual / 6, ContrastiveLoss.Compute(logits).item<float>(), 4);
        Assert.Equal(ContrastiveLoss.Compute(logits).item<float>(), ContrastiveLoss.PerSample(logits).mean().item<float>(), 5);
        Assert.Equal(ContrastiveLoss.Compute(logits).item<float>(), ContrastiveLoss.Compute(logits.T.contiguous()).item<float>(), 5);
    }
}
