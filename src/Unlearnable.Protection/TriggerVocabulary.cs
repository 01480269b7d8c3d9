using Unlearnable.Clip.Text;
using Unlearnable.Protection.NaturalTriggers;

namespace Unlearnable.Protection;

/// <summary>
/// The tokens a trigger may use. Every allowed token is a whole word (ends with &lt;/w&gt;) that
/// survives publication: decoding it and tokenising the text again gives the same single token,
/// so the trigger a reader sees is the trigger a crawler's tokenizer rebuilds. Special tokens
/// and tokens with control or invisible characters are never allowed.
/// </summary>
public sealed class TriggerVocabulary
{
    public string Name { get; }
    public IReadOnlyList<int> Tokens { get; }
    readonly HashSet<int> _set;

    TriggerVocabulary(string name, IEnumerable<int> tokens)
    {
        Name = name;
        Tokens = tokens.Distinct().Order().ToList();
        _set = [.. Tokens];
        if (Tokens.Count == 0) throw new ArgumentException($"trigger vocabulary '{name}' has no usable tokens");
    }

    public bool Contains(int token) => _set.Contains(token);

    /// <summary>
    /// Per-caption candidates from a masked LM (the paper's natural triggers), or null when any
    /// token of <see cref="Tokens"/> may go at any position.
    /// </summary>
    public MaskedLmProposer? Proposer { get; private init; }

    /// <summary>HotFlip restricted, per caption and position, to the masked LM's top words.</summary>
    public static TriggerVocabulary FromMaskedLm(MaskedLmProposer proposer) =>
        new(proposer.Name, Full.Tokens) { Proposer = proposer };

    static readonly Lazy<TriggerVocabulary> FullVocabulary = new(() =>
        new TriggerVocabulary("full", Enumerable.Range(0, ClipTokenizer.StartOfText).Where(IsPublishableWord)));

    /// <summary>The whole CLIP vocabulary (the paper's "w/o BERT"), less what cannot be published as a word.</summary>
    public static TriggerVocabulary Full => FullVocabulary.Value;

    static readonly Lazy<TriggerVocabulary> CommonVocabulary = new(() => FromWords("common-words", EnglishWords.MostCommon));

    /// <summary>Common English words that are single CLIP tokens, so triggers read as words (the default).</summary>
    public static TriggerVocabulary CommonWords => CommonVocabulary.Value;

    /// <summary>The vocabularies known by name alone (no file to read).</summary>
    public static readonly string[] BuiltInNames = ["common-words", "full"];

    /// <summary>"common-words" or "full"; null for any other name.</summary>
    public static TriggerVocabulary? BuiltIn(string name) => name switch
    {
        "common-words" => CommonWords,
        "full" => Full,
        _ => null,
    };

    /// <summary>Only these words, each kept if it is a single publishable CLIP token.</summary>
    public static TriggerVocabulary FromWords(string name, IEnumerable<string> words)
    {
        var tokens = words.Select(w => w.Trim().ToLowerInvariant()).Where(w => w.Length > 0).Select(SingleToken).OfType<int>();
        return new TriggerVocabulary(name, tokens);
    }

    /// <summary>The CLIP token of a word that is a single publishable token, else null.</summary>
    public static int? SingleToken(string word)
    {
        var ids = ClipTokenizer.Default.EncodeRaw(word.ToLowerInvariant());
        return ids.Count == 1 && IsPublishableWord(ids[0]) ? ids[0] : null;
    }

    public static bool IsPublishableWord(int token)
    {
        var tokenizer = ClipTokenizer.Default;
        if (token is < 0 or >= ClipTokenizer.StartOfText) return false;
        if (!tokenizer.TokenString(token).EndsWith("</w>", StringComparison.Ordinal)) return false;
        var text = tokenizer.Decode([token]);
        if (text.Length == 0 || text.Any(c => char.IsControl(c) || char.IsWhiteSpace(c) || c == '\uFFFD' || char.GetUnicodeCategory(c) == System.Globalization.UnicodeCategory.Format))
            return false;
        var again = tokenizer.EncodeRaw(text);
        return again.Count == 1 && again[0] == token;
    }
}
