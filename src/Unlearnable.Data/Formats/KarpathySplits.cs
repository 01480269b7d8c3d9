using System.Text.Json;
using System.Text.Json.Nodes;

namespace Unlearnable.Data.Formats;

/// <summary>
/// Flickr30k / COCO / Flickr8k through Karpathy's <c>dataset_*.json</c>:
/// <c>{"images": [{"filename", "filepath"?, "split", "sentences": [{"raw"}]}]}</c>; "restval" counts as train.
/// Images are looked up under <c>filepath/</c>, <c>images/</c>, or the folder itself.
/// </summary>
public static class KarpathySplits
{
    public static string? Find(string folder) =>
        Directory.Exists(folder) ? Directory.GetFiles(folder, "dataset_*.json").OrderBy(f => f, StringComparer.Ordinal).FirstOrDefault() : null;

    public static CaptionDataset Load(string folder, string? jsonPath = null)
    {
        jsonPath ??= Find(folder) ?? throw new DataFormatException(folder, 0, "no dataset_*.json file");
        JsonObject root;
        try { root = JsonNode.Parse(TextLines.ReadAll(jsonPath))?.AsObject() ?? throw new DataFormatException(jsonPath, 0, "not a JSON object"); }
        catch (JsonException e) { throw new DataFormatException(jsonPath, (int)(e.LineNumber ?? -1) + 1, "invalid JSON: " + e.Message); }
        if (root["images"] is not JsonArray images) throw new DataFormatException(jsonPath, 0, "no 'images' array");

        var items = new List<CaptionedImage>();
        for (int i = 0; i < images.Count; i++)
        {
            string where = $"images[{i}]";
            if (images[i] is not JsonObject entry) throw new DataFormatException(jsonPath, 0, $"{where} is not an object");
            var file = (entry["filename"] as JsonValue)?.GetValue<string>() ?? throw new DataFormatException(jsonPath, 0, $"{where} has no filename");
            var sub = (entry["filepath"] as JsonValue)?.GetValue<string>();
            var path = new[] { sub is null ? null : Path.Combine(folder, sub, file), Path.Combine(folder, "images", file), Path.Combine(folder, file) }
                .FirstOrDefault(p => p is not null && File.Exists(p))
                ?? throw new DataFormatException(jsonPath, 0, $"{where}: image '{file}' was not found under {folder}");
            var split = Captions.ParseSplit((entry["split"] as JsonValue)?.GetValue<string>(), jsonPath, 0);
            if (entry["sentences"] is not JsonArray sentences || sentences.Count == 0)
                throw new DataFormatException(jsonPath, 0, $"{where} has no sentences");
            var captions = sentences.Select(s => Captions.Check(((s as JsonObject)?["raw"] as JsonValue)?.GetValue<string>(), jsonPath, 0)).ToList();
            items.Add(new CaptionedImage(Path.GetFileNameWithoutExtension(file), new FileImage(path), captions, split));
        }
        var name = (root["dataset"] as JsonValue)?.GetValue<string>() ?? Path.GetFileNameWithoutExtension(jsonPath);
        return new CaptionDataset(name, items);
    }
}
