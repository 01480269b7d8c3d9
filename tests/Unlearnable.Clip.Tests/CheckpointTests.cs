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
        var dir = Path.Combine(Path.GetTempPath(), "unlearnable-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        return Path.Combine(dir, name);
    }

    static Tensor Features(ClipModel model)
    {
        model.eval();
        using var _ = no_grad();
        manual_seed(5);
        var size = model.Config.Vision.ImageSize;
        return cat([model.EncodeImage(randn(2, 3, size, size)), model.EncodeText(ModelTests.Ids(model, "a cat", "a dog"))], 0);
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
    public void ForeignOpenClipSafetensorsLoadByNameWithAPreset()
    {
        // An open_clip export: just the state dict under its own key names, no config, plus a key we ignore.
        using var source = new ClipModel(ClipPresets.Get("tiny-vit"));
        var path = TempPath("open_clip.safetensors");
        SafeTensors.Write(path, source.state_dict().Select(kv => (kv.Key, kv.Value)).Append(("attn_mask", ones(4, 4))));
        Assert.Contains("no model config", Assert.Throws<InvalidDataException>(() => ClipCheckpoint.Load(path, CPU)).Message);
        using var loaded = ClipCheckpoint.Load(path, CPU, ClipPresets.Get("tiny-vit"));
        Assert.True(Features(source).allclose(Features(loaded), rtol: 0, atol: 0));
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
        ClipCheckpoint.Save(source, good);
        Assert.Throws<InvalidDataException>(() => ClipCheckpoint.Load(good, CPU, ClipPresets.Get("tiny-vit")));
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
