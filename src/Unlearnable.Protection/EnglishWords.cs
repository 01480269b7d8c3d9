using System.IO.Compression;
using Unlearnable.Clip.Text;

namespace Unlearnable.Protection;

/// <summary>The word lists shipped in this assembly (see Vocabularies/README.md for sources and licences).</summary>
public static class EnglishWords
{
    static readonly Lazy<IReadOnlyList<string>> Common = new(() => ReadLines("common-words.txt", gzip: false));
    static readonly Lazy<HashSet<string>> Dictionary = new(() => ReadLines("english-words.txt.gz", gzip: true).ToHashSet(StringComparer.Ordinal));

    /// <summary>The 3,000 most frequent spoken-English words, most frequent first.</summary>
    public static IReadOnlyList<string> MostCommon => Common.Value;

    public static bool IsDictionaryWord(string word) => Dictionary.Value.Contains(word.ToLowerInvariant());

    /// <summary>Share of trigger tokens (over all triggers) whose text is an English dictionary word.</summary>
    public static double DictionaryShare(IEnumerable<IReadOnlyList<int>> triggers)
    {
        var tokens = triggers.SelectMany(t => t).ToList();
        return tokens.Count == 0 ? 0 : tokens.Count(t => IsDictionaryWord(ClipTokenizer.Default.Decode([t]))) / (double)tokens.Count;
    }

    static List<string> ReadLines(string resource, bool gzip)
    {
        using var stream = typeof(EnglishWords).Assembly.GetManifestResourceStream(resource)
            ?? throw new InvalidOperationException($"word list resource {resource} is missing from the assembly");
        using var reader = new StreamReader(gzip ? new GZipStream(stream, CompressionMode.Decompress) : stream);
        var lines = new List<string>();
        while (reader.ReadLine() is { } line) if (line.Length > 0) lines.Add(line.Trim());
        return lines;
    }
}
