namespace Unlearnable.Training;

/// <summary>Hit@1/5/10 in percent and MedR (1-based median rank), as the paper reports them.</summary>
public sealed record RetrievalScores(double Hit1, double Hit5, double Hit10, double MedR)
{
    public override string ToString() => $"Hit@1 {Hit1,5:F1}  Hit@5 {Hit5,5:F1}  Hit@10 {Hit10,5:F1}  MedR {MedR,6:F1}";
}

public sealed record RetrievalReport(RetrievalScores ImageToText, RetrievalScores TextToImage, RetrievalScores RandomImageToText,
    RetrievalScores RandomTextToImage, int Images, int Captions);

/// <summary>
/// Retrieval ranks from a similarity matrix [images × captions] where caption j belongs to image
/// owner[j]. i2t: the best (lowest) rank among the image's own captions; t2i: the rank of the
/// caption's image. Ranks are 0-based; MedR = median rank + 1.
/// </summary>
public static class RetrievalMetrics
{
    public static RetrievalReport Compute(float[,] similarity, int[] owner)
    {
        int images = similarity.GetLength(0), captions = similarity.GetLength(1);
        if (owner.Length != captions) throw new ArgumentException("one owner per caption is needed");

        var i2t = new double[images];
        for (int i = 0; i < images; i++)
        {
            int best = int.MaxValue;
            for (int j = 0; j < captions; j++)
            {
                if (owner[j] != i) continue;
                int rank = 0;
                for (int k = 0; k < captions; k++) if (Above(similarity[i, k], k, similarity[i, j], j)) rank++;
                best = Math.Min(best, rank);
            }
            i2t[i] = best;
        }
        var t2i = new double[captions];
        for (int j = 0; j < captions; j++)
        {
            int rank = 0, own = owner[j];
            for (int i = 0; i < images; i++) if (Above(similarity[i, j], i, similarity[own, j], own)) rank++;
            t2i[j] = rank;
        }
        var perImage = Enumerable.Range(0, images).Select(i => owner.Count(o => o == i)).ToArray();
        return new RetrievalReport(Scores(i2t), Scores(t2i), RandomImageToText(perImage, captions), RandomTextToImage(images), images, captions);
    }

    // Ties go against the target when the rival comes first, so a collapsed model (all scores
    // equal) ranks like chance instead of scoring a perfect Hit@1.
    static bool Above(float rival, int rivalIndex, float target, int targetIndex) =>
        rival > target || (rival == target && rivalIndex < targetIndex);

    public static RetrievalScores Scores(IReadOnlyList<double> ranks)
    {
        double Hit(int k) => 100.0 * ranks.Count(r => r < k) / ranks.Count;
        return new RetrievalScores(Hit(1), Hit(5), Hit(10), Median(ranks) + 1);
    }

    static double Median(IReadOnlyList<double> values)
    {
        var sorted = values.Order().ToArray();
        int n = sorted.Length;
        return n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
    }

    /// <summary>Uniform random ranking: the caption's image is equally likely at any of N ranks.</summary>
    public static RetrievalScores RandomTextToImage(int images) =>
        FromCdf(r => Math.Min(1.0, (r + 1.0) / images), images);

    /// <summary>
    /// Uniform random ranking of all M captions for an image with c own captions:
    /// P(best rank ≥ r) = Π_{j&lt;c} (M − r − j)/(M − j); averaged over the test images.
    /// </summary>
    public static RetrievalScores RandomImageToText(int[] ownCaptions, int totalCaptions)
    {
        double Cdf(int r) => ownCaptions.Average(c =>
        {
            double survive = 1;
            for (int j = 0; j < c; j++) survive *= Math.Max(0, totalCaptions - (r + 1) - j) / (double)(totalCaptions - j);
            return 1 - survive;
        });
        return FromCdf(Cdf, totalCaptions);
    }

    // cdf(r) = P(rank ≤ r). Hit@k = P(rank < k) = cdf(k − 1); MedR = smallest r with cdf(r) ≥ ½, plus 1.
    static RetrievalScores FromCdf(Func<int, double> cdf, int maxRank)
    {
        int median = 0;
        while (median < maxRank - 1 && cdf(median) < 0.5) median++;
        return new RetrievalScores(100 * cdf(0), 100 * cdf(4), 100 * cdf(9), median + 1);
    }
}
