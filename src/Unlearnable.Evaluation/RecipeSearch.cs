using System.Text.Json;
using TorchSharp;
using Unlearnable.Clip.Model;
using Unlearnable.Data;
using Unlearnable.Training;

namespace Unlearnable.Evaluation;

/// <summary>
/// A hacker at their best picks their own fine-tuning recipe. The grid a spec asks the search to try: learning
/// rates, each trained on clean photos for up to <paramref name="MaxEpochs"/> with early stopping after
/// <paramref name="Patience"/> epochs without a better validation score.
/// </summary>
public sealed record RecipeSearchSpec(IReadOnlyList<double>? LearningRates = null, int MaxEpochs = 20, int Patience = 3)
{
    public static readonly double[] DefaultLearningRates = [1e-5, 1e-4, 1e-3];
    public const int MaxGrid = 8;
    public IReadOnlyList<double> Grid => LearningRates ?? DefaultLearningRates;
}

/// <summary>One learning rate's validation scores per epoch (mean of both directions' Hit@10) and where it peaked.</summary>
public sealed record RecipeTrial(double LearningRate, IReadOnlyList<double> Validation, int BestEpoch, double BestScore);

/// <summary>The recipe chosen for every arm, the trials that chose it, and what they were validated on.</summary>
public sealed record RecipeChoice(double LearningRate, int Epochs, IReadOnlyList<RecipeTrial> Trials, int ValidationPhotos, int TrainPhotos);

/// <summary>
/// Chooses the hacker's recipe as they would: on clean data, validated on one photo per person taken from the
/// <em>training</em> photos (the last one; for data without people, a seeded tenth), never on the held-out test split.
/// Every learning rate trains from the start model, is scored on the validation photos after each epoch, and stops
/// early; the best (learning rate, epoch) wins, ties going to fewer epochs. The result is kept in <paramref name="folder"/>.
/// </summary>
public sealed class RecipeSearch(RecipeSearchSpec search, HackerSpec hacker, int seed, torch.Device device, string folder)
{
    public Action<JobProgress>? OnProgress { get; init; }

    string ResultPath => Path.Combine(folder, "choice.json");

    /// <summary>The search's own split of the training photos: (train, validation).</summary>
    public static (IReadOnlyList<CaptionedImage> Train, IReadOnlyList<CaptionedImage> Validation) Split(IReadOnlyList<CaptionedImage> training, int seed)
    {
        var validation = new HashSet<CaptionedImage>(ReferenceEqualityComparer.Instance);
        foreach (var person in training.Where(t => t.Owner is not null).GroupBy(t => t.Owner))
            if (person.Count() >= 2) validation.Add(person.Last());
        var anonymous = training.Where(t => t.Owner is null).ToList();
        var rng = new Random(Seeds.For(SeedStream.RecipeValidation, seed));
        foreach (var item in anonymous.OrderBy(_ => rng.Next()).Take(anonymous.Count / 10)) validation.Add(item);
        return (training.Where(t => !validation.Contains(t)).ToList(), training.Where(validation.Contains).ToList());
    }

    /// <param name="data">The job's data: only its training split is read.</param>
    /// <param name="start">A fresh start model (the pre-trained one when fine-tuning) of the job's architecture.</param>
    public RecipeChoice Choose(JobData data, Func<ClipModel> start, CancellationToken cancel)
    {
        if (File.Exists(ResultPath)) return JsonSerializer.Deserialize<RecipeChoice>(File.ReadAllText(ResultPath), AttackSpec.Json)!;
        var (train, validation) = Split(data.Train, seed);
        if (validation.Count < 2 || train.Count < 2)
            throw new SpecException("attack.recipeSearch", $"the training split leaves {validation.Count} validation and {train.Count} training photos; the search needs at least 2 of each (people need 2 training photos each)");
        var trials = new List<RecipeTrial>();
        for (int i = 0; i < search.Grid.Count; i++)
        {
            cancel.ThrowIfCancellationRequested();
            trials.Add(Trial(i, search.Grid[i], train, validation, start, cancel));
        }
        var best = trials.OrderByDescending(t => t.BestScore).ThenBy(t => t.BestEpoch).First();
        var choice = new RecipeChoice(best.LearningRate, best.BestEpoch, trials, validation.Count, train.Count);
        Directory.CreateDirectory(Path.GetDirectoryName(ResultPath)!);
        File.WriteAllText(ResultPath, JsonSerializer.Serialize(choice, AttackSpec.Json));
        return choice;
    }

    RecipeTrial Trial(int index, double lr, IReadOnlyList<CaptionedImage> train, IReadOnlyList<CaptionedImage> validation, Func<ClipModel> start, CancellationToken cancel)
    {
        // Named by place in the grid and exact rate, the same under any culture; a file for another rate is not this trial's.
        var path = Path.Combine(folder, $"trial{index}-lr{lr.ToString("R", System.Globalization.CultureInfo.InvariantCulture)}.json");
        if (File.Exists(path) && JsonSerializer.Deserialize<RecipeTrial>(File.ReadAllText(path), AttackSpec.Json) is { } kept && kept.LearningRate == lr) return kept;
        using var model = start();
        var pixels = new ImageTensors(model.Config.Vision.ImageSize);
        var scores = new List<double>();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        try
        {
            new ClipTrainer(model, new TrainingOptions
            {
                Epochs = search.MaxEpochs, BatchSize = hacker.BatchSize, LearningRate = lr, WarmupSteps = hacker.WarmupSteps, Seed = seed,
            }, device)
            {
                OnEpoch = e =>
                {
                    var report = Evaluator.Evaluate(model, validation, pixels, device);
                    scores.Add((report.ImageToText.Hit10 + report.TextToImage.Hit10) / 2);
                    OnProgress?.Invoke(new JobProgress("recipe", FormattableString.Invariant($"recipe search: lr {lr:G3} epoch {e.Epoch}: validation Hit@10 {scores[^1]:F1} %"),
                        e.Epoch, search.MaxEpochs, Epoch: e.Epoch, Epochs: search.MaxEpochs, Loss: e.MeanLoss));
                    int best = scores.IndexOf(scores.Max()) + 1;
                    if (e.Epoch - best >= search.Patience) stop.Cancel();   // early stopping: no better score for Patience epochs
                },
            }.Train(train, pixels, cancel: stop.Token);
        }
        catch (OperationCanceledException) when (!cancel.IsCancellationRequested) { }
        int bestEpoch = scores.IndexOf(scores.Max()) + 1;
        var trial = new RecipeTrial(lr, scores, bestEpoch, scores[bestEpoch - 1]);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, JsonSerializer.Serialize(trial, AttackSpec.Json));
        return trial;
    }
}
