namespace Unlearnable.Data;

public enum Split { Train, Val, Test }

/// <summary>Where an image's encoded bytes come from: a file, or memory (generated data).</summary>
public abstract record ImageSource(string Name)
{
    public abstract byte[] ReadBytes();
}

public sealed record FileImage(string Path) : ImageSource(Path)
{
    public override byte[] ReadBytes() => File.ReadAllBytes(Path);
}

public sealed record MemoryImage(string Label, byte[] Bytes) : ImageSource(Label)
{
    public override byte[] ReadBytes() => Bytes;
}

/// <summary>
/// One image with its captions (5 in the retrieval benchmarks) and its split. Owner is who would
/// post it (a person's anonymous id in face sets, null where the data does not say): the black-box
/// path posts each owner's photos as that owner's own sidecar user.
/// </summary>
public sealed record CaptionedImage(string Id, ImageSource Image, IReadOnlyList<string> Captions, Split Split, string? Owner = null);

/// <summary>An image–caption data set; Notes say what a loader saw and did not use, so nothing is dropped silently.</summary>
public sealed record CaptionDataset(string Name, IReadOnlyList<CaptionedImage> Items, IReadOnlyList<string> Notes)
{
    public CaptionDataset(string name, IReadOnlyList<CaptionedImage> items) : this(name, items, []) { }

    public IReadOnlyList<CaptionedImage> Of(Split split) => Items.Where(i => i.Split == split).ToList();

    public string Summary() =>
        $"{Name}: {Items.Count} images ({Of(Split.Train).Count} train, {Of(Split.Val).Count} val, {Of(Split.Test).Count} test), " +
        $"{Items.Sum(i => i.Captions.Count)} captions";
}

/// <summary>A data file is wrong; the message names the file and line (or entry).</summary>
public sealed class DataFormatException(string file, int line, string message)
    : Exception(line > 0 ? $"{file}:{line}: {message}" : $"{file}: {message}")
{
    public string File { get; } = file;
    public int Line { get; } = line;
}
