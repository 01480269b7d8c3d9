using System.Diagnostics;
using System.Text.Json;
using TorchSharp;
using Unlearnable.Clip.Checkpoints;
using Unlearnable.Clip.Model;
using Unlearnable.Clip.Runtime;
using Unlearnable.Data;
using Unlearnable.Data.Synthetic;

using Unlearnable.Imaging;
using Unlearnable.Protection;
using Unlearnable.Training;

namespace Unlearnable.Evaluation;

/// <summary>
/// Runs an attack spec end to end: load the data, pre-train where fine-tuning needs it, protect
/// the training split, then train and score every arm, and write report.json, report.md and the
/// plots into the output folder. Everything is kept in <c>OUT/work</c>, so running the same job
/// again after a crash or a cancel continues from the last finished epoch.
/// </summary>
public sealed class AttackJob(AttackSpec spec, torch.Device device, string outDir)
{
    public Action<JobProgress>? OnProgress { get; init; }

    string WorkDir => Path.Combine(outDir, "work");

    public AttackReport Run(CancellationToken cancel = default)
    {
        SpecValidator.EnsureValid(spec);
        Directory.CreateDirectory(WorkDir);
        KeepSpec();
        // Seconds over every run of this job folder (interrupted ones too), not only the one that finishes it.
        var elapsedPath = Path.Combine(WorkDir, "elapsed-seconds.txt");
        double earlier = File.Exists(elapsedPath) ? double.Parse(File.ReadAllText(elapsedPath), System.Globalization.CultureInfo.InvariantCulture) : 0;
        var clock = Stopwatch.StartNew();
        try
        {
            return Run(() => earlier + clock.Elapsed.TotalSeconds, cancel);
        }
        finally
        {
            File.WriteAllText(elapsedPath, (earlier + clock.Elapsed.TotalSeconds).ToString(System.Globalization.CultureInfo.InvariantCulture));
        }
    }

    AttackReport Run(Func<double> seconds, CancellationToken cancel)
    {
        var config = spec.Architecture(spec.Preset);

        var data = JobData.Load(spec.Data, spec.Seed, config.Vision.ImageSize, Path.Combine(WorkDir, "data"));
        Report("data", data.Description);
        var arms = ArmPlan.For(spec);
        if (spec.Attack.Mode == AttackMode.FineTune)
            foreach (var (arch, release) in arms.Select(a => (a.Architecture, a.Release)).Distinct()) PreTrained(arch, release, cancel);

        IReadOnlyList<CaptionedImage>? protectedTrain = null;
        ProtectionSummary? protection = null;
        if (spec.Protection.Source != ProtectionSource.None)
        {
            Report("protect", $"protecting {data.Train.Count} training images ({SpecNames.Of(spec.Protection.Source)})");
            (protectedTrain, protection) = new ProtectionStage(spec, device, WorkDir) { OnProgress = OnProgress }
                .Run(data.Train, () => Start(spec.Preset), cancel);
            Report("protect", $"protected: max L∞ {protection.MaxLInfinity}/255, mean PSNR {protection.MeanPsnr:F1} dB, {protection.Seconds:F0} s");
        }

        // Each architecture's hacker picks their own recipe; every arm of that architecture trains with it.
        var recipes = arms.Select(a => a.Architecture).Distinct(StringComparer.OrdinalIgnoreCase).ToDictionary(a => a, a => Recipe(a, data, cancel), StringComparer.OrdinalIgnoreCase);
        var runners = recipes.ToDictionary(r => r.Key, r => new ArmRunner(r.Value is { } c ? spec.Attack with { LearningRate = c.LearningRate, Epochs = c.Epochs } : spec.Attack,
            spec.Seed, device, WorkDir) { OnProgress = OnProgress }, StringComparer.OrdinalIgnoreCase);
        var results = new List<ArmResult>();
        for (int i = 0; i < arms.Count; i++)
        {
            cancel.ThrowIfCancellationRequested();
            var (arm, runner) = (arms[i], runners[arms[i].Architecture]);
            if (runner.Finished(arm) is { } finished) { results.Add(finished); continue; }
            OnProgress?.Invoke(new JobProgress("train", $"arm {i + 1}/{arms.Count}: {arm.Name}", i, arms.Count, arm.Name, i, arms.Count));
            results.Add(runner.Run(arm, i, arms.Count, TrainingSet(arm, data.Train, protectedTrain), data.Test, a => Start(a.Architecture, a.Release), cancel));
        }
        var recipe = recipes[spec.Preset];
        var otherRecipes = recipes.Where(r => r.Value is not null && !r.Key.Equals(spec.Preset, StringComparison.OrdinalIgnoreCase)).ToDictionary(r => r.Key, r => r.Value!);

        var ownCaptions = data.Test.Select(t => t.Captions.Count).ToArray();
        var report = new AttackReport(spec.Name, spec.WithoutSecrets(), data.Description, data.Train.Count, data.Test.Count,
            RetrievalMetrics.RandomImageToText(ownCaptions, ownCaptions.Sum()), RetrievalMetrics.RandomTextToImage(data.Test.Count),
            protection, results, seconds(), recipe, otherRecipes.Count == 0 ? null : otherRecipes);
        Report("report", "writing report.json, report.md and plots");
        AttackReportWriter.Write(outDir, report);
        ReportFigures.Write(outDir, report, data, protectedTrain, arm => runners[arm.Architecture].CheckpointPath(arm), arms, device);
        Report("done", $"report in {outDir}");
        return report;
    }

    /// <summary>The recipe one architecture's hacker chooses (kept in work/recipe, work/recipe-ARCH for the others), or null without a search.</summary>
    RecipeChoice? Recipe(string architecture, JobData data, CancellationToken cancel)
    {
        if (spec.Attack.RecipeSearch is not { } search) return null;
        var folder = Path.Combine(WorkDir, architecture.Equals(spec.Preset, StringComparison.OrdinalIgnoreCase) ? "recipe" : "recipe-" + architecture);
        Report("recipe", $"{architecture}: choosing the hacker's recipe: learning rates {string.Join(", ", search.Grid.Select(lr => lr.ToString(System.Globalization.CultureInfo.InvariantCulture)))}, up to {search.MaxEpochs} epochs, on one clean training photo per person");
        var recipe = new RecipeSearch(search, spec.Attack, spec.Seed, device, folder) { OnProgress = OnProgress }.Choose(data, () => Start(architecture), cancel);
        Report("recipe", FormattableString.Invariant($"{architecture}: the hacker's recipe: lr {recipe.LearningRate:G3}, {recipe.Epochs} epochs (validation Hit@10 {recipe.Trials.Max(t => t.BestScore):F1} %)"));
        return recipe;
    }

    /// <summary>
    /// The hacker's view of the training split for one arm: a protected share, then their defence: the crawl filter (on the pairs
    /// as crawled, as LAION filtered), the caption clean-up and the image washes in the order written (augmentation happens in training).
    /// </summary>
    HackerView TrainingSet(ArmPlan arm, IReadOnlyList<CaptionedImage> clean, IReadOnlyList<CaptionedImage>? protectedTrain)
    {
        var set = arm.Kind == ArmKinds.Protected ? PoisonMix.Mix(clean, protectedTrain!, arm.Fraction, spec.Seed) : clean;
        if (arm.Countermeasure is not { } text) return new HackerView(set);
        var defence = HackerDefence.Parse(text);
        int? dropped = null, rewritten = null;
        if (defence.FilterShare is { } share)
        {
            using var scorer = Start(arm.Architecture, arm.Release);
            var scores = PairFilter.Scores(scorer, set, new ImageTensors(scorer.Config.Vision.ImageSize), device);
            (set, var count) = PairFilter.Drop(set, scores, share);
            dropped = count;
            Report("train", $"{arm.Name}: the pre-trained model's filter dropped {count} of {count + set.Count} pairs, lowest image–text cosine first");
        }
        if (defence.CleanCaptions)
        {
            (set, var count) = CaptionCleanup.KeepName(set);
            rewritten = count;
            Report("train", $"{arm.Name}: {count} of {set.Count} captions cut down to \"{CaptionCleanup.Template}\"");
        }
        foreach (var wash in defence.Washes)
        {
            Report("train", $"{arm.Name}: applying {wash} to every training image");
            set = Countermeasures.ApplyTo(set, wash);
        }
        return new HackerView(set, dropped, rewritten);
    }

    /// <param name="release">Another release of the public model than the hacker's own (<c>arms.releases</c>), or null.</param>
    ClipModel Start(string architecture, int? release = null)
    {
        if (spec.Attack.Mode == AttackMode.FineTune) return ClipCheckpoint.Load(PreTrainedPath(architecture, release), device, spec.Architecture(architecture), spec.QuickGelu);
        TorchRuntime.Seed(spec.Seed);
        var model = new ClipModel(spec.Architecture(architecture));
        model.to(device);
        return model;
    }

    string PreTrainedPath(string architecture, int? release = null) =>
        spec.Attack.PreTrained is { } given && architecture.Equals(spec.Preset, StringComparison.OrdinalIgnoreCase) && release is null
            ? given
            : Path.Combine(WorkDir, "pretrained", PreTrainedName(architecture, release) + ".safetensors");

    static string PreTrainedName(string architecture, int? release) => release is { } r ? $"{architecture}-release{r}" : architecture;

    /// <summary>
    /// The public model the hacker downloads: the embedded recipe at the hacker's release (or another one of <c>arms.releases</c>),
    /// never the job's people (resumable).
    /// </summary>
    void PreTrained(string architecture, int? release, CancellationToken cancel)
    {
        var path = PreTrainedPath(architecture, release);
        if (File.Exists(path)) return;
        var checkpoint = Path.Combine(WorkDir, "pretrained", PreTrainedName(architecture, release) + ".run", "model.safetensors");
        Directory.CreateDirectory(Path.GetDirectoryName(checkpoint)!);
        var recipe = PublicRecipe(spec, release ?? spec.HackerRelease());
        Report("pretrain", $"pre-training {architecture} on {recipe.Describe()} (the public model, seed {recipe.Seed})");
        using var model = recipe.Train(spec.Architecture(architecture), device, checkpoint, p => OnProgress?.Invoke(new JobProgress("pretrain",
            $"pre-training {architecture}: epoch {p.Epoch}/{p.Epochs} loss {p.Loss:F3}", p.Step, p.StepsPerEpoch, Epoch: p.Epoch, Epochs: p.Epochs, Loss: p.Loss)), cancel);
        ClipCheckpoint.SaveAtomically(model, path);
    }

    /// <summary>The public recipe of a spec at one release (seed): the hacker's (<see cref="HackerSpec.PreTrainSeed"/>) or a protection member's.</summary>
    public static PublicModel PublicRecipe(AttackSpec spec, int seed) => new(spec.Attack.PreTrainImages, spec.Attack.PreTrainEpochs, seed, spec.Attack.PreTrainFaces);

    /// <summary>
    /// A job folder belongs to one spec: resuming it with a different spec would mix results. The spec is saved with its
    /// trigger length written out, so a later change of the default cannot resume a folder protected at the old one, and
    /// compared as it protects, so a folder that wrote the length out resumes under a spec that leaves it unset.
    /// </summary>
    void KeepSpec()
    {
        var path = Path.Combine(outDir, "spec.json");
        var json = WithTriggerLength(spec).WithoutSecrets().ToJson();
        if (File.Exists(path) && File.ReadAllText(path) is var saved && saved != json && !SameJob(saved, json))
            throw new SpecException("$", $"{outDir} holds a job with a different spec; use a new output folder or the same spec");
        File.WriteAllText(path, json);
    }

    /// <summary>What a posts spec's unset trigger length meant when it was left unset in a saved spec: only releases from
    /// five-word triggers to eight (1cc351f to dea6c31) saved it so; earlier ones wrote it out, later ones do.</summary>
    const int SavedUnsetPostsLength = 5;

    static bool SameJob(string savedJson, string json)
    {
        try { return WithTriggerLength(AttackSpec.Parse(savedJson), SavedUnsetPostsLength).WithoutSecrets().ToJson() == json; }
        catch (SpecException) { return false; }
    }

    /// <summary>The spec with its in-process trigger length written out (a sidecar source's unset length is its server's).</summary>
    static AttackSpec WithTriggerLength(AttackSpec s, int? unsetPosts = null) => s.Protection is { TriggerLength: null } p
        && p.Source is ProtectionSource.Mem or ProtectionSource.Em or ProtectionSource.Posts
        ? s with { Protection = p with { TriggerLength = p.Source == ProtectionSource.Posts && unsetPosts is { } k ? k : p.TriggerLengthOrDefault } }
        : s;

    void Report(string phase, string message) => OnProgress?.Invoke(JobProgress.Stage(phase, message));
}

/// <summary>Paper Table 3's poison fraction: a seeded share of the training pairs protected, the rest clean.</summary>
public static class PoisonMix
{
    public static IReadOnlyList<CaptionedImage> Mix(IReadOnlyList<CaptionedImage> clean, IReadOnlyList<CaptionedImage> protectedItems, double fraction, int seed)
    {
        if (fraction is < 0 or > 1) throw new ArgumentOutOfRangeException(nameof(fraction), fraction, "the protected share must be in [0, 1]");
        if (clean.Count != protectedItems.Count) throw new ArgumentException($"{protectedItems.Count} protected items for {clean.Count} clean ones");
        var rng = new Random(Seeds.For(SeedStream.PoisonMix, seed));
        var chosen = Enumerable.Range(0, clean.Count).OrderBy(_ => rng.Next()).Take((int)Math.Round(fraction * clean.Count)).ToHashSet();
        return clean.Select((item, i) => chosen.Contains(i) ? protectedItems[i] : item).ToList();
    }
}
