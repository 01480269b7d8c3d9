using Unlearnable.Training;

namespace Unlearnable.Training.Tests;

public class RetrievalMetricsTests
{
    [Fact]
    public void RanksFollowThePapersDefinitions()
    {
        // 3 images, 2 captions each (caption j belongs to image j / 2).
        var owner = new[] { 0, 0, 1, 1, 2, 2 };
        var s = new float[,]
        {
            { 0.9f, 0.1f, 0.2f, 0.3f, 0.0f, 0.0f }, // image 0: its caption 0 ranks first → i2t rank 0
            { 0.5f, 0.6f, 0.1f, 0.4f, 0.7f, 0.0f }, // image 1: best own caption (0.4) has 3 above → rank 3
            { 0.0f, 0.0f, 0.3f, 0.9f, 0.2f, 0.1f }, // image 2: best own (0.2) has 2 above → rank 2
        };
        var r = RetrievalMetrics.Compute(s, owner);
        Assert.Equal(100.0 / 3, r.ImageToText.Hit1, 6);
        Assert.Equal(100.0, r.ImageToText.Hit5, 6);
        Assert.Equal(3, r.ImageToText.MedR);        // ranks 0, 3, 2 → median 2 → MedR 3
        // t2i ranks: c0:0 c1:1 c2:2 c3:1 c4:1 c5:0 → Hit@1 = 2/6, median 1 → MedR 2
        Assert.Equal(100.0 / 3, r.TextToImage.Hit1, 6);
        Assert.Equal(2, r.TextToImage.MedR);
    }

    [Fact]
    public void ACollapsedModelScoresLikeChanceNotPerfect()
    {
        int images = 50;
        var owner = Enumerable.Range(0, images * 5).Select(j => j / 5).ToArray();
        var r = RetrievalMetrics.Compute(new float[images, images * 5], owner);
        Assert.True(r.ImageToText.Hit1 < 10, $"i2t Hit@1 {r.ImageToText.Hit1}");
        Assert.True(r.TextToImage.MedR > images / 4, $"t2i MedR {r.TextToImage.MedR}");
    }

    [Fact]
    public void RandomBaselineMatchesSimulatedRandomRankings()
    {
        int images = 200, captions = 5;
        var rng = new Random(11);
        var owner = Enumerable.Range(0, images * captions).Select(j => j / captions).ToArray();
        double i2tHit10 = 0, t2iHit10 = 0;
        var i2tMedR = new List<double>();
        const int trials = 30;
        for (int t = 0; t < trials; t++)
        {
            var s = new float[images, images * captions];
            for (int i = 0; i < images; i++)
                for (int j = 0; j < images * captions; j++) s[i, j] = rng.NextSingle();
            var r = RetrievalMetrics.Compute(s, owner);
            i2tHit10 += r.ImageToText.Hit10 / trials;
            t2iHit10 += r.TextToImage.Hit10 / trials;
            i2tMedR.Add(r.ImageToText.MedR);
        }
        var baseline = RetrievalMetrics.Compute(new float[images, images * captions], owner);
        Assert.Equal(baseline.RandomImageToText.Hit10, i2tHit10, 0);   // within 0.5 percentage points
        Assert.Equal(baseline.RandomTextToImage.Hit10, t2iHit10, 0);
        Assert.Equal(5.0, baseline.RandomTextToImage.Hit10, 6);          // 10 of 200 images
        Assert.InRange(i2tMedR.Average(), baseline.RandomImageToText.MedR * 0.9, baseline.RandomImageToText.MedR * 1.1);
    }

    [Fact]
    public void LearningRateWarmsUpThenDecaysToZero()
    {
        const double peak = 5e-4;
        var lrs = Enumerable.Range(0, 100).Select(s => LearningRateSchedule.At(s, 100, 10, peak)).ToArray();
        Assert.True(lrs.Take(10).Zip(lrs.Skip(1).Take(9)).All(p => p.First < p.Second));
        Assert.Equal(peak, lrs[9], 12);
        Assert.True(lrs.Skip(10).Zip(lrs.Skip(11)).All(p => p.First >= p.Second));
        Assert.True(lrs[^1] < peak * 0.01);
    }

    [Fact]
    public void BatchesCoverEveryPairWithoutTinyRemainders()
    {
        Assert.Equal([64, 64], ClipTrainer.BatchSizes(128, 64));
        Assert.Equal([65, 65], ClipTrainer.BatchSizes(130, 64));
        Assert.Equal([10], ClipTrainer.BatchSizes(10, 64));
        Assert.Equal(1000, ClipTrainer.BatchSizes(1000, 64).Sum());
        Assert.All(ClipTrainer.BatchSizes(1000, 64), b => Assert.InRange(b, 64, 127));
    }
}
