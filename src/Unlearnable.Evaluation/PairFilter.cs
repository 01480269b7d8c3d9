using TorchSharp;
using Unlearnable.Clip.Model;
using Unlearnable.Data;
using Unlearnable.Training;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Unlearnable.Evaluation;

/// <summary>
/// The crawl filter LAION applied (pairs whose CLIP image–text cosine fell below 0.28–0.3 dropped), as a share: the hacker's
/// pre-trained model scores every pair and the lowest-scored share is not learned from. A share rather than a threshold,
/// because a stand-in model's cosines are on its own scale.
/// </summary>
public static class PairFilter
{
    /// <summary>Each pair's mean cosine between its image and its captions.</summary>
    public static double[] Scores(ClipModel model, IReadOnlyList<CaptionedImage> items, ImageTensors pixels, Device device)
    {
        var (images, texts, owner) = Evaluator.Features(model, items, pixels, device);
        using var scope = NewDisposeScope();
        var cosine = functional.normalize(images, dim: -1).index_select(0, tensor(owner, device: images.device))
            .mul(functional.normalize(texts, dim: -1)).sum(-1).cpu().data<float>().ToArray();
        images.Dispose();
        texts.Dispose();
        var sums = new double[items.Count];
        for (int c = 0; c < owner.Length; c++) sums[owner[c]] += cosine[c];
        return sums.Select((sum, i) => sum / items[i].Captions.Count).ToArray();
    }

    /// <summary>The pairs kept, in their order, and how many were dropped: round(share × n), lowest scores first (ties: earlier pair first).</summary>
    public static (IReadOnlyList<CaptionedImage> Kept, int Dropped) Drop(IReadOnlyList<CaptionedImage> items, IReadOnlyList<double> scores, double share)
    {
        if (scores.Count != items.Count) throw new ArgumentException($"{scores.Count} scores for {items.Count} pairs");
        if (share is < 0 or > 1) throw new ArgumentOutOfRangeException(nameof(share), share, "the dropped share must be in [0, 1]");
        // A contrastive batch needs two pairs: the filter never leaves fewer.
        int drop = Math.Min((int)Math.Round(share * items.Count, MidpointRounding.AwayFromZero), Math.Max(0, items.Count - 2));
        var dropped = Enumerable.Range(0, items.Count).OrderBy(i => scores[i]).ThenBy(i => i).Take(drop).ToHashSet();
        return (items.Where((_, i) => !dropped.Contains(i)).ToList(), drop);
    }
}
