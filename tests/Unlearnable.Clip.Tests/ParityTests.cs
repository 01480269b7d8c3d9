using System.Text.Json;
using Unlearnable.Clip.Checkpoints;
using Unlearnable.Clip.Model;
using Unlearnable.Protection.NaturalTriggers;
using static TorchSharp.torch;

namespace Unlearnable.Clip.Tests;

/// <summary>
/// Our CLIP and BERT against an independent PyTorch reference (tools/parity): seeded weights with
/// OpenAI's / Hugging Face's key names and no config, loaded unchanged, must give the reference's
/// outputs to 1e-4 of each output's largest value.
/// </summary>
public class ParityTests
{
    static readonly string Folder = Path.Combine(AppContext.BaseDirectory, "Fixtures", "Parity");
    const double Tolerance = 1e-4;

    static void AssertClose(Tensor expected, Tensor actual, string what)
    {
        Assert.Equal(expected.shape, actual.shape);
        double scale = expected.abs().max().item<float>();
        double error = (expected - actual).abs().max().item<float>();
        Assert.True(error <= Tolerance * scale, $"{what}: max |Δ| {error:E2} exceeds {Tolerance:E0} × {scale:F3}");
    }

    [Theory]
    [InlineData("rn-quickgelu", null, VisionKind.ResNet, true, 2)]
    [InlineData("vit-quickgelu", null, VisionKind.ViT, true, 2)]
    [InlineData("vit-gelu", false, VisionKind.ViT, false, 1)]
    public void ConfigLessOpenAiWeightsMatchTheReference(string name, bool? quickGelu, VisionKind kind, bool expectQuickGelu, int layers)
    {
        using var model = ClipCheckpoint.Load(Path.Combine(Folder, name + ".safetensors"), CPU, quickGelu: quickGelu);
        var config = model.Config;
        Assert.Equal((kind, expectQuickGelu, 32, 16, 512, 128, 2), (config.Vision.Kind, config.QuickGelu, config.EmbedDim,
            config.Text.ContextLength, config.Text.VocabSize, config.Text.Width, config.Text.Heads));
        if (kind == VisionKind.ResNet) Assert.Equal((64, "1,2,1,1", 8), (config.Vision.ImageSize, string.Join(",", config.Vision.Layers), config.Vision.Width));
        else Assert.Equal((32, 8, 128, 2, layers), (config.Vision.ImageSize, config.Vision.PatchSize, config.Vision.Width, config.Vision.Heads, config.Vision.Layers[0]));
        Assert.Equal(layers, config.Text.Layers);

        var io = SafeTensors.Read(Path.Combine(Folder, name + ".io.safetensors")).Tensors;
        model.eval();
        using var _ = no_grad();
        var image = model.EncodeImage(io["image"]);
        var text = model.EncodeText(io["text"]);
        AssertClose(io["image_features"], image, "image features");
        AssertClose(io["text_features"], text, "text features");
        AssertClose(io["logits_per_image"], model.Logits(image, text), "logits");
    }

    [Fact]
    public void TheWrongActivationIsCaughtByTheFixtures()
    {
        // The fixtures tell QuickGELU from GELU: loading OpenAI-style weights with exact GELU misses.
        using var model = ClipCheckpoint.Load(Path.Combine(Folder, "vit-quickgelu.safetensors"), CPU, quickGelu: false);
        var io = SafeTensors.Read(Path.Combine(Folder, "vit-quickgelu.io.safetensors")).Tensors;
        model.eval();
        using var _ = no_grad();
        var error = (io["text_features"] - model.EncodeText(io["text"])).abs().max().item<float>();
        Assert.True(error > 100 * Tolerance * io["text_features"].abs().max().item<float>());
    }

    [Fact]
    public void BertMaskedLmMatchesTheReference()
    {
        using var bert = BertMaskedLm.Load(Path.Combine(Folder, "bert"), CPU);
        var io = SafeTensors.Read(Path.Combine(Folder, "bert", "io.safetensors")).Tensors;
        var logits = bert.Logits(io["input_ids"], io["attention_mask"].eq(1));
        AssertClose(io["logits"], logits, "masked-LM logits");
    }

    [Theory]
    [InlineData("rn50")]
    [InlineData("rn101")]
    [InlineData("vitb32")]
    public void ReleasedPresetsHaveOpenAisKeysAndShapesAndAreInferredBack(string preset)
    {
        var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(Folder, "released-shapes.json"))).RootElement.GetProperty(preset);
        var reference = json.EnumerateObject().ToDictionary(p => p.Name, p => p.Value.EnumerateArray().Select(d => d.GetInt64()).ToArray());

        using var model = new ClipModel(ClipPresets.Get(preset));
        var ours = model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.shape);
        Assert.Empty(reference.Keys.Except(ours.Keys));
        Assert.Empty(ours.Keys.Except(reference.Keys));
        Assert.All(reference, kv => Assert.Equal(kv.Value, ours[kv.Key]));

        var inferred = ArchitectureInference.Infer(reference, quickGelu: true, "released-shapes.json");
        Assert.Equal(preset, inferred.Name);
        Assert.True(inferred.SameArchitecture(ClipPresets.Get(preset)), inferred.ToString());
        Assert.True(ClipPresets.Get(preset).QuickGelu, "OpenAI's presets use QuickGELU");
    }

    [Fact]
    public void OpenAiTorchScriptAndOpenClipPickleLoadLikeSafetensors()
    {
        // The same weights as OpenAI ships them (TorchScript, float16), as open_clip does (torch.save of the state dict) and as safetensors.
        var folder = Path.Combine(Folder, "formats");
        using var reference = ClipCheckpoint.Load(Path.Combine(folder, "weights.safetensors"), CPU);
        var expected = reference.state_dict();
        foreach (var file in new[] { "openai.pt", "open_clip.bin" })
        {
            using var model = ClipCheckpoint.Load(Path.Combine(folder, file), CPU);
            Assert.True(reference.Config.SameArchitecture(model.Config), $"{file}: {model.Config}");
            Assert.All(model.state_dict(), kv => Assert.True(kv.Value.eq(expected[kv.Key]).all().item<bool>(), $"{file}: {kv.Key}"));
        }
        // A zip that is neither is refused with the reason.
        var notAModel = TestFolders.New() + ".pt";
        Directory.CreateDirectory(Path.GetDirectoryName(notAModel)!);
        using (var zip = System.IO.Compression.ZipFile.Open(notAModel, System.IO.Compression.ZipArchiveMode.Create)) zip.CreateEntry("readme.txt");
        Assert.Contains("not a PyTorch state dict", Assert.Throws<InvalidDataException>(() => ClipCheckpoint.Load(notAModel, CPU)).Message);
    }
}
