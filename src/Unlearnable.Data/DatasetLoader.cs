using Unlearnable.Data.Formats;

namespace Unlearnable.Data;

/// <summary>Opens a folder in any supported layout: captions.jsonl, Flickr8k, or Karpathy dataset_*.json.</summary>
public static class DatasetLoader
{
    public static CaptionDataset Load(string folder)
    {
        if (!Directory.Exists(folder)) throw new DataFormatException(folder, 0, "data folder does not exist");
        if (File.Exists(Path.Combine(folder, CaptionsJsonl.FileName))) return CaptionsJsonl.Load(folder);
        if (Flickr8k.Recognises(folder)) return Flickr8k.Load(folder);
        if (KarpathySplits.Find(folder) is { } json) return KarpathySplits.Load(folder, json);
        throw new DataFormatException(folder, 0,
            $"no {CaptionsJsonl.FileName}, {Flickr8k.TokenFile} or dataset_*.json: not a data folder this program reads");
    }
}
