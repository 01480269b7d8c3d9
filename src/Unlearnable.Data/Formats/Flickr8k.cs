namespace Unlearnable.Data.Formats;

/// <summary>
/// Flickr8k as distributed: <c>Flickr8k.token.txt</c> ("IMAGE.jpg#N&lt;TAB&gt;caption"), an image
/// folder, and the split lists <c>Flickr_8k.{train,dev,test}Images.txt</c>.
/// </summary>
public static class Flickr8k
{
    public const string TokenFile = "Flickr8k.token.txt";
    static readonly string[] ImageFolders = ["Flicker8k_Dataset", "Flickr8k_Dataset", "Images", "images"];

    public static bool Recognises(string folder) => File.Exists(Path.Combine(folder, TokenFile));

    public static CaptionDataset Load(string folder)
    {
        var tokenPath = Path.Combine(folder, TokenFile);
        var captions = new Dictionary<string, List<string>>();
        var order = new List<string>();
        foreach (var (number, text) in TextLines.Read(tokenPath))
        {
            if (string.IsNullOrWhiteSpace(text)) continue;
            int tab = text.IndexOf('\t'), hash = text.IndexOf('#');
            if (tab < 0 || hash < 0 || hash > tab) throw new DataFormatException(tokenPath, number, "expected 'IMAGE#N<TAB>caption'");
            var image = text[..hash];
            if (!captions.TryGetValue(image, out var list)) { captions[image] = list = []; order.Add(image); }
            list.Add(Captions.Check(text[(tab + 1)..], tokenPath, number));
        }

        var imageFolder = ImageFolders.Select(f => Path.Combine(folder, f)).FirstOrDefault(Directory.Exists)
            ?? throw new DataFormatException(folder, 0, $"no image folder ({string.Join(", ", ImageFolders)})");
        var splits = new Dictionary<string, Split>();
        foreach (var (file, split) in new[] { ("Flickr_8k.trainImages.txt", Split.Train), ("Flickr_8k.devImages.txt", Split.Val), ("Flickr_8k.testImages.txt", Split.Test) })
        {
            var path = Path.Combine(folder, file);
            foreach (var (number, text) in TextLines.Read(path))
            {
                var name = text.Trim();
                if (name.Length == 0) continue;
                if (!captions.ContainsKey(name)) throw new DataFormatException(path, number, $"image '{name}' has no captions in {TokenFile}");
                if (!splits.TryAdd(name, split)) throw new DataFormatException(path, number, $"image '{name}' is already in the {splits[name]} split");
            }
        }

        var items = new List<CaptionedImage>();
        foreach (var name in order.Where(splits.ContainsKey))
        {
            var path = Path.Combine(imageFolder, name);
            if (!File.Exists(path)) throw new DataFormatException(tokenPath, 0, $"image '{name}' is not in {imageFolder}");
            items.Add(new CaptionedImage(Path.GetFileNameWithoutExtension(name), new FileImage(path), captions[name], splits[name]));
        }
        int unassigned = order.Count - items.Count;
        var notes = unassigned == 0 ? new List<string>() : [$"{unassigned} images in {TokenFile} are in no split file and were not used"];
        return new CaptionDataset("flickr8k", items, notes);
    }
}
