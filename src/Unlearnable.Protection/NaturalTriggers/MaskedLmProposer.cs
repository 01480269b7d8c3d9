using System.Collections.Concurrent;
using Microsoft.ML.Tokenizers;
using static TorchSharp.torch;

namespace Unlearnable.Protection.NaturalTriggers;

/// <summary>
/// The paper's natural triggers: a masked LM reads <c>[CLS] [MASK]×k caption [SEP]</c> and its
/// top words at each mask (whole words that are single publishable CLIP tokens, 5 by default)
/// become the only HotFlip candidates for that caption's trigger position. Proposals are cached
/// per caption, so a dataset-level run asks BERT once per caption.
/// </summary>
public sealed class MaskedLmProposer : IDisposable
{
    const int BatchSize = 32, RankedWordsScanned = 64;

    readonly BertMaskedLm _model;
    readonly BertTokenizer _tokenizer;
    readonly string[] _pieces;
    readonly Device _device;
    readonly ConcurrentDictionary<(string Caption, int Length), int[][]> _cache = new();

    public string Name { get; }
    public int WordsPerMask { get; }
    /// <summary>Captions whose proposals are kept; past it the cache starts over (a server sees endless new captions).</summary>
    public int MaxCachedCaptions { get; set; } = int.MaxValue;

    MaskedLmProposer(string name, BertMaskedLm model, BertTokenizer tokenizer, string[] pieces, Device device, int wordsPerMask)
    {
        (Name, _model, _tokenizer, _pieces, _device, WordsPerMask) = (name, model, tokenizer, pieces, device, wordsPerMask);
    }

    /// <summary>Loads a bert-base-uncased style folder: config.json, model.safetensors, vocab.txt.</summary>
    public static MaskedLmProposer Load(string folder, Device device, int wordsPerMask = 5)
    {
        if (!Directory.Exists(folder)) throw new DirectoryNotFoundException($"masked LM folder '{folder}' does not exist");
        if (wordsPerMask < 1) throw new ArgumentOutOfRangeException(nameof(wordsPerMask), wordsPerMask, "at least one word per mask is needed");
        string vocabPath = Path.Combine(folder, "vocab.txt");
        if (!File.Exists(vocabPath)) throw new FileNotFoundException($"{folder} has no vocab.txt (WordPiece vocabulary)", vocabPath);
        var pieces = File.ReadAllLines(vocabPath);
        var model = BertMaskedLm.Load(folder, device);
        if (pieces.Length != model.Config.VocabSize)
            throw new InvalidDataException($"{vocabPath} has {pieces.Length} entries but config.json says vocab_size {model.Config.VocabSize}");
        var tokenizer = BertTokenizer.Create(vocabPath, new BertOptions { LowerCaseBeforeTokenization = true });
        return new MaskedLmProposer("mlm:" + Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(folder))), model, tokenizer, pieces, device, wordsPerMask);
    }

    /// <returns>For every caption, the CLIP tokens allowed at each of the <paramref name="length"/> trigger positions (possibly none).</returns>
    public IReadOnlyList<int[][]> Propose(IReadOnlyList<string> captions, int length)
    {
        var missing = captions.Distinct().Where(c => !_cache.ContainsKey((c, length))).ToList();
        if (_cache.Count + missing.Count > MaxCachedCaptions) _cache.Clear();
        foreach (var chunk in missing.Chunk(BatchSize))
        {
            var proposals = Run(chunk, length);
            for (int i = 0; i < chunk.Length; i++) _cache[(chunk[i], length)] = proposals[i];
        }
        return captions.Select(c => _cache[(c, length)]).ToList();
    }

    int[][][] Run(IReadOnlyList<string> captions, int length)
    {
        using var scope = NewDisposeScope();
        int room = _model.Config.MaxPositions - length - 2;
        var rows = captions.Select(c =>
        {
            var words = _tokenizer.EncodeToIds(c, addSpecialTokens: false).Take(Math.Max(0, room));
            return new[] { _tokenizer.ClassificationTokenId }.Concat(Enumerable.Repeat(_tokenizer.MaskingTokenId, length)).Concat(words).Append(_tokenizer.SeparatorTokenId).ToArray();
        }).ToList();
        int n = rows.Max(r => r.Length);
        var ids = new long[rows.Count * n];
        var attends = new bool[rows.Count * n];
        for (int r = 0; r < rows.Count; r++)
            for (int j = 0; j < n; j++)
            {
                bool real = j < rows[r].Length;
                ids[r * n + j] = real ? rows[r][j] : _tokenizer.PaddingTokenId;
                attends[r * n + j] = real;
            }
        var logits = _model.Logits(tensor(ids, [rows.Count, n]).to(_device), tensor(attends, [rows.Count, n]).to(_device));
        int scanned = Math.Min(RankedWordsScanned, _model.Config.VocabSize);
        var ranked = logits.narrow(1, 1, length).topk(scanned, dim: -1).indexes.cpu().data<long>().ToArray();   // [b, k, scanned]
        var result = new int[rows.Count][][];
        for (int r = 0; r < rows.Count; r++)
        {
            result[r] = new int[length][];
            for (int p = 0; p < length; p++)
                result[r][p] = ranked.Skip((r * length + p) * scanned).Take(scanned)
                    .Select(id => ClipWord(_pieces[id])).OfType<int>().Distinct().Take(WordsPerMask).ToArray();
        }
        return result;
    }

    /// <summary>A WordPiece entry usable as a trigger word: a whole alphabetic word that is one publishable CLIP token.</summary>
    static int? ClipWord(string piece) =>
        piece.Length == 0 || piece.StartsWith("##", StringComparison.Ordinal) || !piece.All(char.IsLetter) ? null : TriggerVocabulary.SingleToken(piece);

    public void Dispose() => _model.Dispose();
}
