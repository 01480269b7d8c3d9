using Unlearnable.Clip.Text;
using static TorchSharp.torch;

namespace Unlearnable.Protection;

/// <summary>
/// Token rows for "trigger ⊕ caption": <c>[SOT] t1…tk caption… [EOT] 0…</c>, the trigger
/// written right after SOT as the authors do; a long caption is cut so EOT still fits.
/// </summary>
public static class TriggeredCaptions
{
    public static int[] Row(IReadOnlyList<int> trigger, string caption, int contextLength)
    {
        var ids = ClipTokenizer.Default.EncodeRaw(caption);
        var row = new int[contextLength];
        row[0] = ClipTokenizer.StartOfText;
        for (int i = 0; i < trigger.Count; i++) row[1 + i] = trigger[i];
        int room = contextLength - 2 - trigger.Count, n = Math.Min(room, ids.Count);
        for (int i = 0; i < n; i++) row[1 + trigger.Count + i] = ids[i];
        row[1 + trigger.Count + n] = ClipTokenizer.EndOfText;
        return row;
    }

    public static Tensor Batch(IReadOnlyList<IReadOnlyList<int>> triggers, IReadOnlyList<string> captions, int contextLength, Device device)
    {
        var all = new long[captions.Count * contextLength];
        for (int b = 0; b < captions.Count; b++)
        {
            var row = Row(triggers[b], captions[b], contextLength);
            for (int i = 0; i < contextLength; i++) all[b * contextLength + i] = row[i];
        }
        return tensor(all, [captions.Count, contextLength]).to(device);
    }

    /// <summary>
    /// MEM's caption shuffle S(T): sample i keeps its own trigger but gets the clean caption of
    /// sample π(i) for a random permutation π, so the image noise cannot lean on the caption.
    /// </summary>
    public static Tensor Shuffled(IReadOnlyList<IReadOnlyList<int>> triggers, IReadOnlyList<string> captions, int seed, int contextLength, Device device)
    {
        var permutation = Permutation(captions.Count, seed);
        return Batch(triggers, permutation.Select(p => captions[p]).ToList(), contextLength, device);
    }

    public static int[] Permutation(int count, int seed)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, count).OrderBy(_ => rng.Next()).ToArray();
    }

    /// <summary>The published caption: the trigger's words, a space, the caption.</summary>
    public static string Publish(IReadOnlyList<int> trigger, string caption) =>
        trigger.Count == 0 ? caption : ClipTokenizer.Default.Decode(trigger) + " " + caption;
}
