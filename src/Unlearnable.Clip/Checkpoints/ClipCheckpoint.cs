using System.Text.Json;
using System.Text.Json.Serialization;
using TorchSharp;
using Unlearnable.Clip.Model;
using static TorchSharp.torch;

namespace Unlearnable.Clip.Checkpoints;

/// <summary>
/// Model checkpoints in two formats, chosen by extension: <c>.safetensors</c> (open_clip key
/// names, config in the header metadata; also how real open_clip weights converted to
/// safetensors are loaded) or TorchSharp's own format (any other extension, config in
/// <c>PATH.json</c>). Loading checks every key and shape and names what does not match.
/// </summary>
public static class ClipCheckpoint
{
    const string ConfigKey = "unlearnable.config";
    static readonly JsonSerializerOptions Json = new() { WriteIndented = true, Converters = { new JsonStringEnumConverter() } };

    // Keys some open_clip / OpenAI exports carry that are not learnable state of this model.
    static readonly HashSet<string> IgnoredKeys = ["attn_mask", "input_resolution", "context_length", "vocab_size"];

    public static bool IsSafeTensors(string path) => path.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase);

    public static void Save(ClipModel model, string path)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        var config = JsonSerializer.Serialize(model.Config, Json);
        if (IsSafeTensors(path))
        {
            SafeTensors.Write(path, model.state_dict().Select(kv => (kv.Key, kv.Value)),
                new Dictionary<string, string> { [ConfigKey] = config, ["format"] = "pt" });
        }
        else
        {
            model.save(path);
            File.WriteAllText(path + ".json", config);
        }
    }

    /// <summary>Loads a checkpoint; <paramref name="config"/> is needed only when the file carries none (foreign weights).</summary>
    public static ClipModel Load(string path, Device device, ClipConfig? config = null)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"Checkpoint '{path}' does not exist.", path);
        ClipModel model;
        if (IsSafeTensors(path))
        {
            var contents = SafeTensors.Read(path);
            try
            {
                config ??= contents.Metadata.TryGetValue(ConfigKey, out var json)
                    ? Deserialize(json, path)
                    : throw new InvalidDataException($"{path} carries no model config; name a preset that matches it.");
                model = new ClipModel(config);
                LoadStateDict(model, contents.Tensors, path);
            }
            finally
            {
                foreach (var t in contents.Tensors.Values) t.Dispose();
            }
        }
        else
        {
            var sidecar = path + ".json";
            config ??= File.Exists(sidecar)
                ? Deserialize(File.ReadAllText(sidecar), sidecar)
                : throw new InvalidDataException($"{path} has no config file {sidecar}; name a preset that matches it.");
            model = new ClipModel(config);
            try { model.load(path, strict: true); }
            catch (Exception e) when (e is ArgumentException or InvalidOperationException or IOException or NotImplementedException)
            {
                throw new InvalidDataException($"{path} does not match model '{config.Name}': {e.Message}", e);
            }
        }
        model.to(device);
        return model;
    }

    /// <summary>Copies tensors into the model by name; every parameter and buffer must be present with its exact shape.</summary>
    public static void LoadStateDict(ClipModel model, IReadOnlyDictionary<string, Tensor> tensors, string source)
    {
        var expected = model.state_dict();
        var missing = expected.Keys.Where(k => !tensors.ContainsKey(k)).ToList();
        var unexpected = tensors.Keys.Where(k => !expected.ContainsKey(k) && !IgnoredKeys.Contains(k.Split('.').Last())).ToList();
        var badShapes = expected.Where(kv => tensors.TryGetValue(kv.Key, out var t) && !t.shape.SequenceEqual(kv.Value.shape))
            .Select(kv => $"{kv.Key}: checkpoint {SafeTensors.FormatShape(tensors[kv.Key].shape)}, model {SafeTensors.FormatShape(kv.Value.shape)}")
            .ToList();
        if (missing.Count + unexpected.Count + badShapes.Count > 0)
            throw new InvalidDataException($"{source} does not match model '{model.Config.Name}'." +
                List("missing", missing) + List("unexpected", unexpected) + List("shape mismatch", badShapes));
        using var _ = no_grad();
        foreach (var (name, target) in expected) target.copy_(tensors[name].to_type(target.dtype));
    }

    static string List(string what, List<string> items) =>
        items.Count == 0 ? "" : $" {what} ({items.Count}): {string.Join("; ", items.Take(8))}{(items.Count > 8 ? "; ..." : "")}.";

    static ClipConfig Deserialize(string json, string source)
    {
        try { return JsonSerializer.Deserialize<ClipConfig>(json, Json) ?? throw new InvalidDataException($"{source}: empty model config"); }
        catch (JsonException e) { throw new InvalidDataException($"{source}: model config is not valid: {e.Message}", e); }
    }
}
