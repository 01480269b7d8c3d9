using Unlearnable.Clip.Model;
using Unlearnable.Clip.Runtime;
using Unlearnable.Data;
using Unlearnable.Data.Synthetic;
using Unlearnable.Evaluation;
using Unlearnable.Imaging;
using Unlearnable.Training;
using static TorchSharp.torch;

namespace Unlearnable.Evaluation.Tests;

/// <summary>What a hacker does to protected data before fine-tuning: each defence does what it says, and bad ones are refused by field.</summary>
public class HackerDefenceTests
{
    [Fact]
    public void DefencesCombineWithPlusAndBadOnesAreRefusedNamingTheField()
    {
        var combined = HackerDefence.Parse("jpeg:75+augment");
        Assert.Equal([new Countermeasure(CountermeasureKind.Jpeg, 75)], combined.Washes);
        Assert.True(combined.Augment);
        Assert.False(combined.CleanCaptions);
        Assert.Null(combined.FilterShare);
        var all = HackerDefence.Parse("Grayscale + filter:0.3 + captions");
        Assert.Equal(0.3, all.FilterShare);
        Assert.True(all.CleanCaptions);
        Assert.Equal("grayscale+filter:0.3+captions", all.ToString());

        foreach (var bad in new[] { "sharpen", "augment:2", "filter:0", "filter:0.95", "filter", "jpeg:75+", "augment+augment", "jpeg:0", "filter:NaN" })
            Assert.Throws<ArgumentException>(() => HackerDefence.Parse(bad));
        Assert.Contains("unknown step 'sharpen'", Assert.Throws<ArgumentException>(() => HackerDefence.Parse("jpeg:75+sharpen")).Message);

        var problems = SpecValidator.Check(new AttackSpec { Arms = new ArmsSpec(Countermeasures: ["jpeg:10", "captions+wobble"]) });
        Assert.Equal("arms.countermeasures[1]", Assert.Single(problems).Field);
        // The filter scores pairs with the pre-trained model: a from-scratch hacker has none.
        var scratch = SpecValidator.Check(new AttackSpec { Attack = new HackerSpec(AttackMode.FromScratch), Arms = new ArmsSpec(Countermeasures: ["augment", "filter:0.3"]) });
        Assert.Equal("arms.countermeasures[1]", Assert.Single(scratch).Field);
    }

    [Fact]
    public void GrayscaleLeavesOneChannelsContent()
    {
        var scenes = SyntheticScenes.Generate(3, seed: 5, testImages: 0, size: 48).Items;
        foreach (var item in Countermeasures.ApplyTo(scenes, Countermeasure.Parse("grayscale")))
        {
            using var image = SafeImageDecoder.Decode(item.Image.ReadBytes());
            var p = image.GetPixelSpan();
            for (int i = 0; i < p.Length; i += 4) Assert.True(p[i] == p[i + 1] && p[i + 1] == p[i + 2], $"pixel {i / 4} is not grey");
        }
    }

    [Fact]
    public void TheFilterDropsExactlyTheNamedShareLowestScoredFirst()
    {
        var items = Enumerable.Range(0, 10).Select(i => new CaptionedImage($"p{i}", new MemoryImage($"p{i}", []), ["c"], Split.Train)).ToList();
        double[] scores = [0.5, 0.1, 0.9, 0.1, 0.3, 0.8, 0.2, 0.7, 0.6, 0.4];
        var (kept, dropped) = PairFilter.Drop(items, scores, 0.3);
        Assert.Equal(3, dropped);
        // The three lowest: 0.1 (p1), 0.1 (p3, after p1 on the tie), 0.2 (p6); the rest keep their order.
        Assert.Equal(["p0", "p2", "p4", "p5", "p7", "p8", "p9"], kept.Select(k => k.Id));
        Assert.Equal(2, PairFilter.Drop(items, scores, 0.9).Kept.Count);   // 9 of 10 asked, but never fewer than a contrastive batch left
        Assert.Equal(10, PairFilter.Drop(items, scores, 0.04).Kept.Count);

        // The scores are the model's cosine between each image and its captions: a pair's own caption beats another pair's.
        TorchRuntime.Seed(3);
        using var model = new ClipModel(ClipPresets.Get("tiny"));
        var scenes = SyntheticScenes.Generate(4, seed: 2, testImages: 0, size: 64).Items;
        var pixels = new ImageTensors(64);
        var own = PairFilter.Scores(model, scenes, pixels, CPU);
        var swapped = PairFilter.Scores(model, scenes.Select((s, i) => s with { Captions = scenes[(i + 1) % 4].Captions }).ToList(), pixels, CPU);
        var (images, texts, owner) = Evaluator.Features(model, scenes, pixels, CPU);
        for (int i = 0; i < scenes.Count; i++)
            Assert.Equal(Enumerable.Range(0, owner.Length).Where(c => owner[c] == i).Average(c =>
                nn.functional.cosine_similarity(images[i].unsqueeze(0), texts[c].unsqueeze(0)).item<float>()), own[i], 5);
        Assert.NotEqual(own, swapped);
    }

    [Fact]
    public void AugmentationIsDrawnAfreshEveryEpochAndRepeatsForTheSameStep()
    {
        var scenes = SyntheticScenes.Generate(4, seed: 1, testImages: 0, size: 64).Items;
        using var batch = new ImageTensors(64).Batch(scenes.Select(s => s.Image).ToList(), CPU);
        var augment = new ImageAugment(seed: 9);
        using var epoch0 = augment.Apply(batch, epoch: 0, step: 0);
        using var again = augment.Apply(batch, epoch: 0, step: 0);
        using var epoch1 = augment.Apply(batch, epoch: 1, step: 0);
        Assert.Equal(batch.shape, epoch0.shape);
        Assert.True(epoch0.equal(again).all().item<bool>(), "the same epoch and step must give the same augmentation (a resumed run repeats it)");
        Assert.False(epoch0.equal(epoch1).all().item<bool>(), "another epoch must draw other crops, flips, colours and noise");
        Assert.True(epoch0.sub(batch).abs().mean().item<float>() > 0.05, "augmented images must differ from the originals");
        // Still valid pixels once the CLIP normalisation is undone.
        using var pixels01 = PixelSpace.Unnormalize(epoch1);
        Assert.InRange(pixels01.min().item<float>(), -1e-5f, 1e-5f + 1);
        Assert.InRange(pixels01.max().item<float>(), -1e-5f, 1 + 1e-5f);
    }

    [Fact]
    public void CaptionCleanUpKeepsTheNameAndDropsTheTrigger()
    {
        CaptionedImage Post(string id, string owner, params string[] captions) => new(id, new MemoryImage(id, []), captions, Split.Train, owner);
        var items = new List<CaptionedImage>
        {
            Post("a1", "id000", "mint river hold a photo of Ada Lovelace", "mint river hold Ada Lovelace at the beach"),
            Post("a2", "id000", "quiet dog sun a portrait of Ada Lovelace"),
            Post("b1", "id001", "Grace Hopper in the office", "table ran Grace Hopper smiling at the camera"),
            Post("s1", "id002", "a red ball on the grass"),
            new("n1", new MemoryImage("n1", []), ["Nobody Owns This"], Split.Train),
        };
        var (cleaned, rewritten) = CaptionCleanup.KeepName(items);
        Assert.Equal(3, rewritten);
        Assert.Equal(["a photo of Ada Lovelace"], cleaned[0].Captions);
        Assert.Equal(["a photo of Ada Lovelace"], cleaned[1].Captions);
        Assert.Equal(["a photo of Grace Hopper"], cleaned[2].Captions);
        Assert.Equal(items[3].Captions, cleaned[3].Captions);   // no name shared: left as it was
        Assert.Equal(items[4].Captions, cleaned[4].Captions);   // no owner: left as it was
        Assert.Equal("Ada", CaptionCleanup.SharedName(["Ada Lovelace smiling", "Ada at the beach"]));
        Assert.Null(CaptionCleanup.SharedName(["Adam at home", "Ada at the beach"]));
    }

    [Fact]
    public void TheVerdictIsTheWorstCaseOverTheDefencesInEachDirection()
    {
        static ArmResult Arm(string name, string kind, double i2t, double t2i, string? defence = null) =>
            new(name, kind, "tiny", kind == ArmKinds.Protected ? 1 : 0, defence, [], new RetrievalScores(0, 0, i2t, 10), new RetrievalScores(0, 0, t2i, 10), 0);
        var report = new AttackReport("r", new AttackSpec(), "d", 100, 100, new RetrievalScores(0, 0, 20, 10), new RetrievalScores(0, 0, 20, 10), null,
        [
            Arm("pre-trained", ArmKinds.PreTrained, 10, 12), Arm("clean", ArmKinds.Clean, 60, 70), Arm("protected", ArmKinds.Protected, 20, 30),
            Arm("protected + jpeg:10", ArmKinds.Protected, 40, 34, "jpeg:10"), Arm("protected + augment", ArmKinds.Protected, 30, 50, "augment"),
        ], 1);
        var verdict = report.Verdict!;
        Assert.Equal(3, verdict.Arms.Count);
        Assert.Equal(80, verdict.Arms[0].ImageToText!.Value, 6);            // as sent: (60 − 20) / (60 − 10) of the clean hacker's gain taken away
        Assert.Equal(40, verdict.WorstImageToText.Kept!.Value, 6);          // jpeg:10: (60 − 40) / (60 − 10)
        Assert.Equal("protected + jpeg:10", verdict.WorstImageToText.Arm);
        Assert.Equal(20 / 58.0 * 100, verdict.WorstTextToImage.Kept!.Value, 6);   // augment: (70 − 50) / (70 − 12)
        Assert.Equal("protected + augment", verdict.WorstTextToImage.Arm);
        Assert.Equal(50, verdict.CleanGainImageToText!.Value, 6);
        Assert.Equal(58, verdict.CleanGainTextToImage!.Value, 6);
        var md = AttackReportWriter.Markdown(report);
        Assert.Contains("## Protection kept, worst case over the hacker's defences", md);
        Assert.Contains("| face → name (image→text) | 40 % | protected + jpeg:10 | +50.0 |", md);
    }

    [Fact]
    public void TheReportSaysWhenTheSurrogatesMultipliedInBfloat16()
    {
        string Written(Clip.Model.MatmulPrecision? precision, ProtectionSource source) => AttackReportWriter.Markdown(new AttackReport("r",
            new AttackSpec { Protection = new ProtectionSpec(source, Precision: precision) }, "d", 10, 10, new RetrievalScores(0, 0, 20, 10), new RetrievalScores(0, 0, 20, 10),
            new ProtectionSummary(SpecNames.Of(source), 10, 8, 40, null, 1, []), [], 1));
        Assert.Contains("; the surrogates' products in bfloat16.", Written(Clip.Model.MatmulPrecision.Bfloat16, ProtectionSource.Mem));
        Assert.Contains("; the surrogates' products in bfloat16.", Written(Clip.Model.MatmulPrecision.Bfloat16, ProtectionSource.Posts));
        Assert.DoesNotContain("bfloat16", Written(null, ProtectionSource.Mem));
        Assert.DoesNotContain("bfloat16", Written(Clip.Model.MatmulPrecision.Float32, ProtectionSource.Posts));
    }
}
