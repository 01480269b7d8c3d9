using System.Buffers.Binary;
using TorchSharp;
using Unlearnable.Clip.Checkpoints;
using Unlearnable.Clip.Model;
using static TorchSharp.torch;

namespace Unlearnable.Clip.Tests;

public class CheckpointTests
{
    static string TempPath(string name)
    {
        var dir = TestFolders.New();
        Directory.CreateDirectory(dir);
        return Path.Combine(dir, name);
    }

    static Tensor Features(ClipModel model)
    {
        model.eval();
        using var _ = no_grad();
        manual_seed(5);
        var size = model.Config.Vision.ImageSize;
        return cat([model.EncodeImage(randn(2, 3, size, size)), model.EncodeText(TokenIds.Of(model, "a cat", "a dog"))], 0);
    }

    [Theory]
    [InlineData("model.safetensors")]
    [InlineData("model.ckpt")]
    public void SaveAndLoadGiveTheSameModel(string name)
    {
        var path = TempPath(name);
        using var model = new ClipModel(ClipPresets.Get("tiny"));
        ClipCheckpoint.Save(model, path);
        using var loaded = ClipCheckpoint.Load(path, CPU);
        Assert.Equal(model.Config with { }, loaded.Config, new ConfigComparer());
        Assert.True(Features(model).allclose(Features(loaded), rtol: 0, atol: 0));
    }

    [Fact]
    public void ConfigLessWeightsLoadWithAPresetOrByInference()
    {
        // An open_clip export: just the state dict under its own key names, no config, plus a key we ignore.
        using var source = new ClipModel(ClipPresets.Get("tiny-vit"));
        var path = TempPath("open_clip.safetensors");
        SafeTensors.Write(path, source.state_dict().Select(kv => (kv.Key, kv.Value)).Append(("attn_mask", ones(4, 4))));
        using var named = ClipCheckpoint.Load(path, CPU, ClipPresets.Get("tiny-vit"));
        Assert.True(Features(source).allclose(Features(named), rtol: 0, atol: 0));
        // Without a preset the shapes tell all but the heads (width / 64, as in OpenAI's releases) and the activation.
        using var inferred = ClipCheckpoint.Load(path, CPU, quickGelu: false);
        Assert.Equal(("inferred-vit", 2, 2, 64, 8), (inferred.Config.Name, inferred.Config.Vision.Heads, inferred.Config.Text.Heads,
            inferred.Config.Vision.ImageSize, inferred.Config.Vision.PatchSize));
        Assert.True(source.Config.SameArchitecture(inferred.Config with { Vision = inferred.Config.Vision with { Heads = 4 }, Text = inferred.Config.Text with { Heads = 4 } }));
    }

    [Fact]
    public void ShapeMismatchAndMissingKeysAreNamed()
    {
        using var source = new ClipModel(ClipPresets.Get("tiny"));
        var tensors = source.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value);
        tensors["text_projection"] = zeros(3, 3);
        tensors.Remove("ln_final.bias");
        var path = TempPath("bad.safetensors");
        SafeTensors.Write(path, tensors.Select(kv => (kv.Key, kv.Value)));
        var e = Assert.Throws<InvalidDataException>(() => ClipCheckpoint.Load(path, CPU, ClipPresets.Get("tiny")));
        Assert.Contains("text_projection: checkpoint [3, 3]", e.Message);
        Assert.Contains("missing (1): ln_final.bias", e.Message);
        // The same weights do not fit a different architecture either.
        var good = TempPath("tiny.safetensors");
        SafeTensors.Write(good, source.state_dict().Select(kv => (kv.Key, kv.Value)));
        Assert.Throws<InvalidDataException>(() => ClipCheckpoint.Load(good, CPU, ClipPresets.Get("tiny-vit")));
        // A file that is no CLIP (here: a text tower alone) cannot be inferred; the message says what is missing.
        var textOnly = TempPath("text-only.safetensors");
        SafeTensors.Write(textOnly, source.state_dict().Where(kv => !kv.Key.StartsWith("visual.", StringComparison.Ordinal)).Select(kv => (kv.Key, kv.Value)));
        var unknown = Assert.Throws<InvalidDataException>(() => ClipCheckpoint.Load(textOnly, CPU)).Message;
        Assert.Contains("neither a ViT", unknown);
        Assert.Contains("name a preset", unknown);
    }

    [Fact]
    public void CheckpointsWithTheOldShortcutNamesStillLoad()
    {
        // Before OpenAI's names, the ResNet shortcut was downsample.0 (pool), .1 (conv), .2 (BN).
        using var source = new ClipModel(ClipPresets.Get("tiny"));
        var old = source.state_dict().ToDictionary(
            kv => kv.Key.Replace(".downsample.1.", ".downsample.2.").Replace(".downsample.0.", ".downsample.1."), kv => kv.Value);
        Assert.Contains(old.Keys, k => k.EndsWith(".downsample.2.running_var", StringComparison.Ordinal));
        var path = TempPath("old.safetensors");
        ClipCheckpoint.Save(source, path);
        var metadata = SafeTensors.Read(path).Metadata;
        SafeTensors.Write(path, old.Select(kv => (kv.Key, kv.Value)), metadata);
        using var loaded = ClipCheckpoint.Load(path, CPU);
        Assert.True(Features(source).allclose(Features(loaded), rtol: 0, atol: 0));
    }

    [Fact]
    public void BatchCountersMayBeAbsentAndTorchSharpFilesReadByName()
    {
        using var source = new ClipModel(ClipPresets.Get("tiny"));
        var path = TempPath("no-counters.safetensors");
        SafeTensors.Write(path, source.state_dict().Where(kv => !kv.Key.EndsWith("num_batches_tracked", StringComparison.Ordinal)).Select(kv => (kv.Key, kv.Value)),
            SafeTensors.Read(Save(source)).Metadata);
        using var loaded = ClipCheckpoint.Load(path, CPU);
        Assert.True(Features(source).allclose(Features(loaded), rtol: 0, atol: 0));

        // TorchSharp's own format is read into the same name → tensor map, every key and dtype intact.
        var native = TempPath("model.ckpt");
        source.save(native);
        var read = TorchSharpFormat.Read(native);
        var expected = source.state_dict();
        Assert.Equal(expected.Keys.Order(), read.Keys.Order());
        Assert.All(expected, kv => Assert.True(kv.Value.dtype == read[kv.Key].dtype && kv.Value.eq(read[kv.Key]).all().item<bool>(), kv.Key));
        File.WriteAllBytes(native, File.ReadAllBytes(native)[..1000]);
        Assert.Contains("not a valid TorchSharp checkpoint", Assert.Throws<InvalidDataException>(() => TorchSharpFormat.Read(native)).Message);
    }

    static string Save(ClipModel model)
    {
        var path = TempPath("model.safetensors");
        ClipCheckpoint.Save(model, path);
        return path;
    }

    [Fact]
    public void CorruptSafetensorsAreRefusedWithAReason()
    {
        var path = TempPath("corrupt.safetensors");
        File.WriteAllBytes(path, [1, 2, 3]);
        Assert.Contains("shorter than", Assert.Throws<InvalidDataException>(() => SafeTensors.Read(path)).Message);

        var header = new byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(header, ulong.MaxValue / 2);
        File.WriteAllBytes(path, header);
        Assert.Contains("header size", Assert.Throws<InvalidDataException>(() => SafeTensors.Read(path)).Message);

        var json = """{"w": {"dtype": "F32", "shape": [4, 4], "data_offsets": [0, 64]}}"""u8.ToArray();
        BinaryPrimitives.WriteUInt64LittleEndian(header, (ulong)json.Length);
        File.WriteAllBytes(path, [.. header, .. json, .. new byte[16]]);
        Assert.Contains("outside the file", Assert.Throws<InvalidDataException>(() => SafeTensors.Read(path)).Message);

        Assert.Throws<FileNotFoundException>(() => ClipCheckpoint.Load(TempPath("absent.safetensors"), CPU));
    }

    [Fact]
    public void HalfPrecisionWeightsLoadAsFloat32()
    {
        var path = TempPath("half.safetensors");
        var values = new float[] { 0.5f, -1.25f, 3f };
        var bytes = values.SelectMany(v => BitConverter.GetBytes((Half)v)).ToArray();
        var json = System.Text.Encoding.UTF8.GetBytes("""{"w": {"dtype": "F16", "shape": [3], "data_offsets": [0, """ + bytes.Length + "]}}");
        var header = new byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(header, (ulong)json.Length);
        File.WriteAllBytes(path, [.. header, .. json, .. bytes]);
        var w = SafeTensors.Read(path).Tensors["w"];
        Assert.Equal(ScalarType.Float32, w.dtype);
        Assert.Equal(values, w.data<float>().ToArray());
    }

    sealed class ConfigComparer : IEqualityComparer<ClipConfig>
    {
        public bool Equals(ClipConfig? a, ClipConfig? b) =>
            a!.ToString() == b!.ToString() && a.Vision.Layers.SequenceEqual(b.Vision.Layers) && a.QuickGelu == b.QuickGelu;
        public int GetHashCode(ClipConfig c) => c.Name.GetHashCode();
    }
}
