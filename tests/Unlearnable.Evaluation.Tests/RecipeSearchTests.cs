using Unlearnable.Clip.Model;
using Unlearnable.Clip.Runtime;
using Unlearnable.Data;
using Unlearnable.Evaluation;
using Unlearnable.Training;
using static TorchSharp.torch;

namespace Unlearnable.Evaluation.Tests;

/// <summary>The hacker picks their own learning rate and epochs, validating on training photos only.</summary>
public class RecipeSearchTests
{
    /// <summary>A test photo the search must never open.</summary>
    sealed record ForbiddenImage(string Label) : ImageSource(Label)
    {
        public override byte[] ReadBytes() => throw new InvalidOperationException($"the recipe search read the test photo {Label}");
    }

    [Fact]
    public void TheSearchValidatesOnOneTrainingPhotoPerPersonAndNeverReadsATestPhoto()
    {
        var folder = TestFolders.New();
        var data = JobData.Load(new DataSpec(DataKind.SyntheticIdentities, Identities: 4, Photos: 4), seed: 0, imageSize: 64, folder);
        var guarded = data with { Test = data.Test.Select(t => t with { Image = new ForbiddenImage(t.Image.Name) }).ToList() };

        var (train, validation) = RecipeSearch.Split(data.Train, seed: 0);
        Assert.Equal(4, validation.Count);
        foreach (var person in data.Train.GroupBy(t => t.Owner))
            Assert.Same(person.Last(), Assert.Single(validation, v => v.Owner == person.Key));
        Assert.Equal(data.Train.Count, train.Count + validation.Count);
        Assert.Empty(train.Intersect(validation));
        Assert.DoesNotContain(validation, v => data.Test.Any(t => t.Id == v.Id));

        ClipModel Start()
        {
            TorchRuntime.Seed(0);
            return new ClipModel(ClipPresets.Get("tiny"));
        }
        var search = new RecipeSearch(new RecipeSearchSpec([1e-4, 3e-3], MaxEpochs: 3, Patience: 1), new HackerSpec(BatchSize: 4, WarmupSteps: 1), seed: 0, CPU, folder);
        var choice = search.Choose(guarded, Start, default);
        Assert.Equal([1e-4, 3e-3], choice.Trials.Select(t => t.LearningRate));
        Assert.Equal((4, 8), (choice.ValidationPhotos, choice.TrainPhotos));
        var best = choice.Trials.MaxBy(t => t.BestScore)!;
        Assert.Equal((best.LearningRate, best.BestEpoch), (choice.LearningRate, choice.Epochs));
        foreach (var trial in choice.Trials)
        {
            Assert.InRange(trial.Validation.Count, 1, 3);
            Assert.Equal(trial.Validation.Max(), trial.BestScore);
            Assert.Equal(trial.Validation.ToList().IndexOf(trial.Validation.Max()) + 1, trial.BestEpoch);
            // Stopped early only after Patience epochs without a better score.
            if (trial.Validation.Count < 3) Assert.True(trial.Validation.Count - trial.BestEpoch >= 1);
        }
        // Kept in the work folder: asking again reads the choice instead of training.
        Assert.Equal(choice.LearningRate, search.Choose(guarded, () => throw new InvalidOperationException("trained again"), default).LearningRate);
    }

    [Fact]
    public void BadGridsAreRefusedNamingTheFieldAndTheReportNamesTheRecipe()
    {
        var problems = SpecValidator.Check(new AttackSpec { Attack = new HackerSpec(RecipeSearch: new RecipeSearchSpec([1e-4, -1], MaxEpochs: 0, Patience: 0)) });
        Assert.Equal(["attack.recipeSearch.learningRates[1]", "attack.recipeSearch.maxEpochs", "attack.recipeSearch.patience"], problems.Select(p => p.Field));
        Assert.Equal("attack.recipeSearch.learningRates", Assert.Single(SpecValidator.Check(new AttackSpec { Attack = new HackerSpec(RecipeSearch: new RecipeSearchSpec([])) })).Field);
        Assert.Empty(SpecValidator.Check(AttackSpec.Parse("""{ "attack": { "recipeSearch": { "maxEpochs": 5 } } }""")));
        // One held-out photo and one to validate on leave none to train on: refused before anything runs.
        Assert.Equal("data.photos", Assert.Single(SpecValidator.Check(new AttackSpec { Data = new DataSpec(Photos: 2), Attack = new HackerSpec(RecipeSearch: new RecipeSearchSpec()) })).Field);

        // The public model must never have seen the people evaluated.
        var root = TestFolders.New();
        foreach (var (pool, person) in new[] { ("dev", "Ada_Lovelace"), ("dev", "Grace_Hopper"), ("public", "Ada_Lovelace"), ("public", "Alan_Turing") })
        {
            Directory.CreateDirectory(Path.Combine(root, pool, person));
            for (int n = 0; n < 3; n++) File.WriteAllBytes(Path.Combine(root, pool, person, $"{n}.jpg"), [0xff, 0xd8]);
        }
        var overlap = SpecValidator.Check(new AttackSpec
        {
            Data = new DataSpec(DataKind.Identities, Path.Combine(root, "dev")), Attack = new HackerSpec(PreTrainFaces: Path.Combine(root, "public")),
        });
        Assert.Equal("attack.preTrainFaces", Assert.Single(overlap).Field);
        Assert.Contains("Ada_Lovelace", overlap[0].Problem);

        var recipe = new RecipeChoice(1e-3, 3, [new RecipeTrial(1e-4, [10, 12], 2, 12), new RecipeTrial(1e-3, [20, 25, 30, 28, 27], 3, 30)], 96, 1109);
        var vit = new RecipeChoice(1e-4, 9, [new RecipeTrial(1e-4, [5, 9, 11, 13, 14, 15, 16, 17, 18], 9, 18)], 96, 1109);
        var report = new AttackReport("r", new AttackSpec(), "d", 1, 1, new RetrievalScores(0, 0, 20, 10), new RetrievalScores(0, 0, 20, 10), null, [], 1, recipe,
            new Dictionary<string, RecipeChoice> { ["tiny-vit"] = vit });
        var md = AttackReportWriter.Markdown(report);
        Assert.Contains("3 epochs, lr 0.001", md);
        Assert.Contains("validated on 96 training photos (one per person) after training on the other 1109", md);
        Assert.Contains("lr 0.0001: 12.0 % at epoch 2 of 2; lr 0.001: 30.0 % at epoch 3 of 5", md);
        Assert.Contains("The tiny-vit hacker chose theirs the same way: lr 0.0001, 9 epochs (lr 0.0001: 18.0 % at epoch 9 of 9)", md);
    }
}
