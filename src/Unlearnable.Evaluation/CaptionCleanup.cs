using System.Text.RegularExpressions;
using Unlearnable.Data;

namespace Unlearnable.Evaluation;

/// <summary>
/// The hacker's caption clean-up: what they want from a person's posts is the link between the face and the name,
/// so everything else in a caption (a trigger, the scene, hashtags) is dropped and the caption becomes
/// "a photo of NAME". The name is what every caption of one person shares: the longest run of capitalised words
/// common to all of that owner's captions. Captions without an owner or a shared name are left as they are.
/// </summary>
public static partial class CaptionCleanup
{
    public const string Template = "a photo of {0}";

    /// <summary>The cleaned set and how many pairs had their captions rewritten.</summary>
    public static (IReadOnlyList<CaptionedImage> Items, int Rewritten) KeepName(IReadOnlyList<CaptionedImage> items)
    {
        var names = items.Where(i => i.Owner is not null).GroupBy(i => i.Owner!)
            .ToDictionary(g => g.Key, g => SharedName(g.SelectMany(i => i.Captions).ToList()));
        int rewritten = 0;
        var output = items.Select(item =>
        {
            if (item.Owner is null || names[item.Owner] is not { } name) return item;
            rewritten++;
            return item with { Captions = [string.Format(System.Globalization.CultureInfo.InvariantCulture, Template, name)] };
        }).ToList();
        return (output, rewritten);
    }

    /// <summary>The longest run of capitalised words found in every caption, or null when they share none.</summary>
    public static string? SharedName(IReadOnlyList<string> captions)
    {
        if (captions.Count == 0) return null;
        return CapitalisedRuns(captions[0])
            .Where(run => captions.All(c => Regex.IsMatch(c, $@"(?<![\p{{L}}'-]){Regex.Escape(run)}(?![\p{{L}}'-])")))
            .OrderByDescending(run => run.Length).ThenBy(run => run, StringComparer.Ordinal).FirstOrDefault();
    }

    // Every contiguous sub-run of capitalised words, so "Ada Lovelace" in one caption matches "Ada Lovelace's" or "Ada" alone in another.
    static IEnumerable<string> CapitalisedRuns(string caption)
    {
        foreach (Match m in NameRun().Matches(caption))
        {
            var words = m.Value.Split(' ');
            for (int start = 0; start < words.Length; start++)
                for (int end = start + 1; end <= words.Length; end++)
                    yield return string.Join(' ', words[start..end]);
        }
    }

    [GeneratedRegex(@"\p{Lu}[\p{L}'-]*(?: \p{Lu}[\p{L}'-]*)*")]
    private static partial Regex NameRun();
}
