namespace Unlearnable.Data.Formats;

/// <summary>One person's photos.</summary>
public sealed record Identity(string Name, IReadOnlyList<ImageSource> Images);

/// <summary>
/// Face sets laid out as one sub-folder per person (PubFig, LFW, ORL, a company's own photos).
/// Files with other extensions are listed in the error rather than skipped.
/// </summary>
public static class IdentityFolders
{
    public static readonly string[] ImageExtensions = [".png", ".jpg", ".jpeg", ".pgm", ".webp", ".bmp"];

    public static IReadOnlyList<Identity> Load(string root)
    {
        if (!Directory.Exists(root)) throw new DataFormatException(root, 0, "folder does not exist");
        var people = new List<Identity>();
        foreach (var dir in Directory.GetDirectories(root).OrderBy(d => d, StringComparer.Ordinal))
        {
            var files = Directory.GetFiles(dir).Where(f => !Path.GetFileName(f).StartsWith('.')).OrderBy(f => f, StringComparer.Ordinal).ToList();
            var unknown = files.Where(f => !ImageExtensions.Contains(Path.GetExtension(f).ToLowerInvariant())).ToList();
            if (unknown.Count > 0)
                throw new DataFormatException(unknown[0], 0, $"not an image type this loader reads ({string.Join(", ", ImageExtensions)})");
            if (files.Count == 0) throw new DataFormatException(dir, 0, "identity folder has no images");
            people.Add(new Identity(Path.GetFileName(dir), files.Select(f => (ImageSource)new FileImage(f)).ToList()));
        }
        if (people.Count == 0) throw new DataFormatException(root, 0, "no identity sub-folders");
        return people;
    }
}
