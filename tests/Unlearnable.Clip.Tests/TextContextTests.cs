using TorchSharp;
using Unlearnable.Clip.Model;
using Unlearnable.Clip.Runtime;
using Unlearnable.Protection;
using static TorchSharp.torch;

namespace Unlearnable.Clip.Tests;

/// <summary>
/// The text tower reads only the tokens up to a batch's last EOT, and trigger search scores its tries in few wide
/// forwards: both must compute what the full 77-token context, one try at a time, computed.
/// </summary>
public class TextContextTests
{
    public static TheoryData<string> Presets => new(ClipPresets.Names);

    static readonly string[] Captions =
    [
        "a photo", "a photo of Ada Lovelace at the seaside in winter, smiling at the camera", "two dogs on a sofa", "",
    ];

    [Theory]
    [MemberData(nameof(Presets))]
    public void TrimmingTheContextChangesNoFeatureAndNoGradient(string preset)
    {
        TorchRuntime.Seed(5);
        using var model = new ClipModel(ClipPresets.Get(preset));
        using var ids = TokenIds.Of(model, Captions);
        using var eot = TextFeatures.EndOfTextIndex(ids);
        Assert.True(TextFeatures.UsedLength(eot) < model.Config.Text.ContextLength, "the captions leave part of the context unused");
        using var weights = randn(Captions.Length, model.Config.EmbedDim);
        var text = model.named_parameters().Where(p => !p.name.StartsWith("visual.", StringComparison.Ordinal)).Select(p => p.parameter).ToList();

        var trimmed = Run(trim: true);
        var full = Run(trim: false);

        AssertClose(full.Features, trimmed.Features, "features");
        AssertClose(full.TokenGradient, trimmed.TokenGradient, "the token embeddings' gradient (what HotFlip ranks by)");
        for (int i = 0; i < text.Count; i++) AssertClose(full.ParameterGradients[i], trimmed.ParameterGradients[i], $"text parameter {i}'s gradient");

        (Tensor Features, Tensor TokenGradient, Tensor[] ParameterGradients) Run(bool trim)
        {
            model.TrimsTextContext = trim;
            model.zero_grad();
            var embeddings = model.EmbedTokens(ids).detach().requires_grad_(true);
            var features = model.EncodeTextEmbeddings(embeddings, eot);
            features.mul(weights).sum().backward();
            return (features.detach(), embeddings.grad!.clone(), text.Select(p => p.grad is { } g ? g.clone() : zeros_like(p)).ToArray());
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void BatchedTrimmedSearchFindsTheSameTriggersAsOneTryPerFullForward(int beamWidth)
    {
        TorchRuntime.Seed(8);
        using var model = new ClipModel(ClipPresets.Get("small"));   // a 77-token context, as the released models have
        model.eval();
        var captions = Enumerable.Range(0, 8).Select(i => $"a photo of person number {i} at the {(i % 2 == 0 ? "beach" : "office")}").ToList();
        var start = captions.Select(_ => Enumerable.Repeat(TriggerTable.TheToken, 3).ToArray()).ToList();
        using var images = randn(captions.Count, model.Config.EmbedDim);

        model.TrimsTextContext = false;
        var reference = new TriggerSearch(model, TriggerVocabulary.CommonWords, topK: 16, beamWidth, CPU) { ActivationBudget = 0 };
        var expected = reference.Update(images, captions, start);
        model.TrimsTextContext = true;
        var batched = new TriggerSearch(model, TriggerVocabulary.CommonWords, topK: 16, beamWidth, CPU);
        var found = batched.Update(images, captions, start);

        Assert.Equal(expected, found);
        Assert.Contains(found, t => !t.SequenceEqual(start[0]));   // the search moved: equal because both searched, not because neither did
        Assert.Equal(reference.TextRows, batched.TextRows);
        Assert.True(batched.TextForwards < reference.TextForwards / 8, $"{batched.TextForwards} forwards batched, {reference.TextForwards} one try each");
    }

    static void AssertClose(Tensor expected, Tensor actual, string what)
    {
        double scale = Math.Max(expected.abs().max().item<float>(), 1e-12);
        double difference = expected.sub(actual).abs().max().item<float>();
        Assert.True(difference <= 1e-4 * scale, $"{what}: differs by {difference:G3} at a scale of {scale:G3}");
    }
}
