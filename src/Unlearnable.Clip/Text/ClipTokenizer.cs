using System.IO.Compression;
using System.Net;
using System.Text;
using System.Text.RegularExpressions;
using Microsoft.ML.Tokenizers;

namespace Unlearnable.Clip.Text;

/// <summary>
/// CLIP's byte-level BPE (49,408 ids) on Microsoft.ML.Tokenizers, built from the merges file
/// embedded in this assembly. Encodes to fixed-length rows <c>[SOT] tokens… [EOT] 0…</c>.
/// </summary>
public sealed partial class ClipTokenizer
{
    public const int StartOfText = 49406;
    public const int EndOfText = 49407;
    public const int VocabularySize = 49408;
    const int MergeCount = 49152 - 256 - 2;

    static readonly Lazy<ClipTokenizer> Shared = new(() => new ClipTokenizer());
    public static ClipTokenizer Default => Shared.Value;

    readonly BpeTokenizer _bpe;
    readonly string[] _tokens;                 // id → token string in byte-unicode form
    readonly Dictionary<char, byte> _unicodeToByte;

    ClipTokenizer()
    {
        var byteToUnicode = ByteUnicode.Table();
        _unicodeToByte = byteToUnicode.Select((c, b) => (c, b)).ToDictionary(p => p.c, p => (byte)p.b);

        var merges = ReadMerges();
        var tokens = new List<string>(VocabularySize);
        var ordered = ByteUnicode.VocabularyOrder().ToList();
        tokens.AddRange(ordered.Select(c => c.ToString()));
        tokens.AddRange(ordered.Select(c => c + "</w>"));
        tokens.AddRange(merges.Select(m => m.Replace(" ", "", StringComparison.Ordinal)));
        tokens.Add("<|startoftext|>");
        tokens.Add("<|endoftext|>");
        _tokens = tokens.ToArray();

        var special = new Dictionary<string, int> { ["<|startoftext|>"] = StartOfText, ["<|endoftext|>"] = EndOfText };
        _bpe = BpeTokenizer.Create(new BpeOptions(tokens.Take(tokens.Count - 2).Select((t, i) => new KeyValuePair<string, int>(t, i)))
        {
            Merges = merges,
            SpecialTokens = special,
            ByteLevel = true,
            EndOfWordSuffix = "</w>",
            PreTokenizer = new RegexPreTokenizer(ClipSplit(), special),
            Normalizer = new ClipTextNormalizer(),
        });
    }

    /// <summary>Token ids of the text without SOT/EOT and without truncation.</summary>
    public IReadOnlyList<int> EncodeRaw(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        return _bpe.EncodeToIds(text);
    }

    /// <summary>
    /// One context row: SOT, the tokens, EOT, zero padding. Longer text is truncated so that the
    /// row still ends with EOT (as open_clip's tokenizer does), never silently without it.
    /// </summary>
    public int[] Encode(string text, int contextLength)
    {
        if (contextLength < 3) throw new ArgumentOutOfRangeException(nameof(contextLength), contextLength, "context must hold SOT, one token and EOT");
        var ids = EncodeRaw(text);
        var row = new int[contextLength];
        row[0] = StartOfText;
        int n = Math.Min(ids.Count, contextLength - 2);
        for (int i = 0; i < n; i++) row[i + 1] = ids[i];
        row[n + 1] = EndOfText;
        return row;
    }

    /// <summary>Rows for a batch of texts, flattened row-major [count × contextLength].</summary>
    public int[] EncodeBatch(IReadOnlyList<string> texts, int contextLength)
    {
        var all = new int[texts.Count * contextLength];
        for (int i = 0; i < texts.Count; i++) Encode(texts[i], contextLength).CopyTo(all, i * contextLength);
        return all;
    }

    /// <summary>How many BPE tokens the text has (no SOT/EOT): lets callers detect truncation.</summary>
    public int CountTokens(string text) => EncodeRaw(text).Count;

    /// <summary>The token's surface string in byte-unicode form, with "&lt;/w&gt;" marking a word end.</summary>
    public string TokenString(int id) => _tokens[id];

    /// <summary>
    /// Decodes ids to text with word boundaries ("&lt;/w&gt;" → space); SOT, EOT and padding are skipped.
    /// </summary>
    public string Decode(IEnumerable<int> ids)
    {
        var bytes = new List<byte>();
        foreach (var id in ids)
        {
            if (id is 0 or StartOfText or EndOfText) continue;
            if ((uint)id >= VocabularySize) throw new ArgumentOutOfRangeException(nameof(ids), id, $"token ids are 0..{VocabularySize - 1}");
            var token = _tokens[id];
            bool wordEnd = token.EndsWith("</w>", StringComparison.Ordinal);
            foreach (var c in wordEnd ? token[..^4] : token) bytes.Add(_unicodeToByte[c]);
            if (wordEnd) bytes.Add((byte)' ');
        }
        return Encoding.UTF8.GetString(bytes.ToArray()).TrimEnd();
    }

    static List<string> ReadMerges()
    {
        using var resource = typeof(ClipTokenizer).Assembly.GetManifestResourceStream("bpe_simple_vocab_16e6.txt.gz")
            ?? throw new InvalidOperationException("CLIP BPE vocabulary resource is missing from the assembly");
        using var reader = new StreamReader(new GZipStream(resource, CompressionMode.Decompress), Encoding.UTF8);
        reader.ReadLine(); // header
        var merges = new List<string>(MergeCount);
        while (merges.Count < MergeCount && reader.ReadLine() is { } line) merges.Add(line);
        if (merges.Count != MergeCount) throw new InvalidDataException($"CLIP merges file has {merges.Count} merges, expected {MergeCount}");
        return merges;
    }

    // CLIP's pre-tokenisation pattern (case-insensitive: text is lower-cased first anyway).
    [GeneratedRegex(@"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+", RegexOptions.IgnoreCase)]
    private static partial Regex ClipSplit();

    /// <summary>CLIP's basic_clean + whitespace_clean + lower().</summary>
    sealed partial class ClipTextNormalizer : Normalizer
    {
        public override string Normalize(string original)
        {
            var text = WebUtility.HtmlDecode(WebUtility.HtmlDecode(original));
            return Whitespace().Replace(text, " ").Trim().ToLowerInvariant();
        }

        public override string Normalize(ReadOnlySpan<char> original) => Normalize(original.ToString());

        [GeneratedRegex(@"\s+")]
        private static partial Regex Whitespace();
    }
}
