using System.Text.Json;
using System.Text.Json.Nodes;
using Unlearnable.Imaging;

namespace Unlearnable.Data.Formats;

/// <summary>
/// The generic folder format: <c>captions.jsonl</c>, one JSON object a line:
/// <c>{"image": "relative/path.png", "captions": ["...", ...], "split": "train|val|test"}</c>.
/// </summary>
public static class CaptionsJsonl
{
    public const string FileName = "captions.jsonl";

    public static CaptionDataset Load(string folder)
    {
        var path = Path.Combine(folder, FileName);
        var items = new List<CaptionedImage>();
        var seen = new HashSet<string>();
        foreach (var (number, text) in TextLines.Read(path))
        {
            if (string.IsNullOrWhiteSpace(text)) continue;
            JsonObject entry;
            try { entry = JsonNode.Parse(text)?.AsObject() ?? throw new DataFormatException(path, number, "line is not a JSON object"); }
            catch (Exception e) when (e is JsonException or InvalidOperationException) { throw new DataFormatException(path, number, "line is not a JSON object: " + e.Message); }

            var image = String(entry, "image", path, number);
            if (Path.IsPathRooted(image) || image.Split('/', '\\').Contains(".."))
                throw new DataFormatException(path, number, $"image path '{image}' must stay inside the folder");
            var imagePath = Path.Combine(folder, image);
            if (!File.Exists(imagePath)) throw new DataFormatException(path, number, $"image '{image}' does not exist");
            if (!seen.Add(image)) throw new DataFormatException(path, number, $"image '{image}' is listed twice");
            if (entry["captions"] is not JsonArray captions || captions.Count == 0)
                throw new DataFormatException(path, number, "'captions' must be a non-empty array of strings");
            var checkedCaptions = captions.Select(c => Captions.Check(c is JsonValue v && v.TryGetValue<string>(out var s) ? s : null, path, number)).ToList();
            var split = Captions.ParseSplit(entry["split"] is JsonValue sv && sv.TryGetValue<string>(out var sp) ? sp : null, path, number);
            items.Add(new CaptionedImage(Path.GetFileNameWithoutExtension(image), new FileImage(imagePath), checkedCaptions, split));
        }
        if (items.Count == 0) throw new DataFormatException(path, 0, "no entries");
        return new CaptionDataset(Path.GetFileName(Path.GetFullPath(folder).TrimEnd('/')), items);
    }

    /// <summary>Writes images (as given; generated ones named by their format) and captions.jsonl into <paramref name="folder"/>.</summary>
    public static void Save(CaptionDataset dataset, string folder)
    {
        var images = Path.Combine(folder, "images");
        Directory.CreateDirectory(images);
        using var writer = new StreamWriter(Path.Combine(folder, FileName + ".tmp"));
        foreach (var item in dataset.Items)
        {
            var bytes = item.Image.ReadBytes();
            var extension = item.Image is FileImage f ? Path.GetExtension(f.Path) : ImageFormats.Extension(ImageFormats.Sniff(bytes) ?? OutputFormat.Png);
            var relative = $"images/{item.Id}{extension}";
            File.WriteAllBytes(Path.Combine(folder, relative), bytes);
            var line = new JsonObject
            {
                ["image"] = relative,
                ["captions"] = new JsonArray(item.Captions.Select(c => (JsonNode?)c).ToArray()),
                ["split"] = item.Split.ToString().ToLowerInvariant(),
            };
            writer.WriteLine(line.ToJsonString());
        }
        writer.Close();
        File.Move(Path.Combine(folder, FileName + ".tmp"), Path.Combine(folder, FileName), overwrite: true);
    }

    static string String(JsonObject entry, string key, string file, int line) =>
        entry[key] is JsonValue v && v.TryGetValue<string>(out var s) && s.Length > 0
            ? s
            : throw new DataFormatException(file, line, $"'{key}' must be a non-empty string");
}
