using System.Text.Json;
using System.Text.Json.Serialization;
using TorchSharp;
using Unlearnable.Clip.Model;
using static TorchSharp.torch;

namespace Unlearnable.Clip.Checkpoints;

/// <summary>
/// Model checkpoints in two formats, chosen by extension: <c>.safetensors</c> (OpenAI's key
/// names, config in the header metadata or, for real OpenAI / open_clip weights, inferred from the
/// shapes) or TorchSharp's own format (any other extension, config in <c>PATH.json</c>). PyTorch's
/// files (OpenAI's TorchScript .pt, open_clip's pickled state dicts) load too, told by content.
/// Loading checks every key and shape and names what does not match.
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

    /// <summary>
    /// Saves under a temporary name of its own, then moves the file into place: an interrupted save leaves no
    /// half-written checkpoint at <paramref name="path"/>, and two writers of one path never share a file.
    /// </summary>
    public static void SaveAtomically(ClipModel model, string path)
    {
        var partial = Path.ChangeExtension(path, $".{Guid.NewGuid():N}.partial{Path.GetExtension(path)}");   // the format follows the extension
        Save(model, partial);
        if (!IsSafeTensors(path)) File.Move(partial + ".json", path + ".json", overwrite: true);
        File.Move(partial, path, overwrite: true);
    }

    /// <summary>
    /// Loads a checkpoint. The architecture is the file's own config when it carries one, else
    /// <paramref name="presetIfNone"/> (a preset the caller names for config-less files), else
    /// inferred from the tensor shapes (OpenAI / open_clip releases). <paramref name="quickGelu"/>
    /// overrides the activation; an inferred architecture defaults to QuickGELU, which OpenAI's
    /// released weights need.
    /// </summary>
    public static ClipModel Load(string path, Device device, ClipConfig? presetIfNone = null, bool? quickGelu = null)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"Checkpoint '{path}' does not exist.", path);
        var (tensors, stored) = Read(path);
        try
        {
            var config = stored ?? presetIfNone ?? ArchitectureInference.Infer(tensors.ToDictionary(kv => kv.Key, kv => kv.Value.shape), quickGelu ?? true, path);
            if (quickGelu is bool q) config = config with { QuickGelu = q };
            var model = new ClipModel(config);
            LoadStateDict(model, tensors, path);
            model.to(device);
            return model;
        }
        finally
        {
            foreach (var t in tensors.Values) t.Dispose();
        }
    }

    /// <summary>The file's tensors and, when it carries one, its config.</summary>
    static (Dictionary<string, Tensor> Tensors, ClipConfig? Config) Read(string path)
    {
        if (IsSafeTensors(path))
        {
            var contents = SafeTensors.Read(path);
            return (contents.Tensors, contents.Metadata.TryGetValue(ConfigKey, out var json) ? Deserialize(json, path) : null);
        }
        if (PyTorchFiles.IsArchive(path)) return (PyTorchFiles.Read(path), null);
        var configFile = path + ".json";
        var config = File.Exists(configFile) ? Deserialize(File.ReadAllText(configFile), configFile) : null;
        return (TorchSharpFormat.Read(path), config);
    }

    /// <summary>
    /// Copies tensors into the model by name (after renaming old keys); every parameter and buffer
    /// must be present with its exact shape, except BatchNorm's batch counter, which PyTorch
    /// exports do not always carry and inference does not use.
    /// </summary>
    public static void LoadStateDict(ClipModel model, IReadOnlyDictionary<string, Tensor> tensors, string source)
    {
        var named = LegacyKeys.Migrate(tensors);
        var expected = model.state_dict();
        var missing = expected.Keys.Where(k => !named.ContainsKey(k) && !k.EndsWith(".num_batches_tracked", StringComparison.Ordinal)).ToList();
        var unexpected = named.Keys.Where(k => !expected.ContainsKey(k) && !IgnoredKeys.Contains(k.Split('.').Last())).ToList();
        var badShapes = expected.Where(kv => named.TryGetValue(kv.Key, out var t) && !t.shape.SequenceEqual(kv.Value.shape))
            .Select(kv => $"{kv.Key}: checkpoint {SafeTensors.FormatShape(named[kv.Key].shape)}, model {SafeTensors.FormatShape(kv.Value.shape)}")
            .ToList();
        if (missing.Count + unexpected.Count + badShapes.Count > 0)
            throw new InvalidDataException($"{source} does not match model '{model.Config.Name}'." +
                List("missing", missing) + List("unexpected", unexpected) + List("shape mismatch", badShapes));
        using var _ = no_grad();
        foreach (var (name, target) in expected)
            if (named.TryGetValue(name, out var value)) target.copy_(value.to_type(target.dtype));
    }

    static string List(string what, List<string> items) =>
        items.Count == 0 ? "" : $" {what} ({items.Count}): {string.Join("; ", items.Take(8))}{(items.Count > 8 ? "; ..." : "")}.";

    static ClipConfig Deserialize(string json, string source)
    {
        try { return JsonSerializer.Deserialize<ClipConfig>(json, Json) ?? throw new InvalidDataException($"{source}: empty model config"); }
        catch (JsonException e) { throw new InvalidDataException($"{source}: model config is not valid: {e.Message}", e); }
    }
}
