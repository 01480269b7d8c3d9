using System.Diagnostics;
using System.Text.Json;
using TorchSharp;
using Unlearnable.Clip.Checkpoints;
using Unlearnable.Clip.Model;
using Unlearnable.Clip.Runtime;
using Unlearnable.Clip.Text;
using Unlearnable.Data;
using Unlearnable.Data.Formats;
using Unlearnable.Imaging;
using Unlearnable.Protection;
using Unlearnable.Protection.Robustness;
using Unlearnable.Training;

namespace Unlearnable.Evaluation;

/// <summary>
/// Produces the protected training split the hacker receives, aligned index for index with the
/// clean one, and measures it. The result is kept in the work folder, so a resumed job does not
/// protect again; an interrupted in-process run resumes mid-run, a sidecar run skips posts it has.
/// </summary>
public sealed class ProtectionStage(AttackSpec spec, torch.Device device, string workDir)
{
    public Action<JobProgress>? OnProgress { get; init; }

    string Folder => Path.Combine(workDir, "protected");
    string SummaryPath => Path.Combine(Folder, "summary.json");

    /// <summary>What the spec asks of in-process protection, on the evaluation jobs' baseline.</summary>
    public static ProtectionOptions Options(AttackSpec spec) => new ProtectionSettings
    {
        Method = spec.Protection.Source == ProtectionSource.Em ? ProtectionMethod.Em : ProtectionMethod.Mem,
        Epsilon = spec.Protection.Epsilon, TriggerLength = spec.Protection.TriggerLengthOrDefault, Rounds = spec.Protection.Rounds,
        SurrogateSteps = spec.Protection.SurrogateSteps, PgdSteps = spec.Protection.PgdSteps, TriggerRounds = spec.Protection.TriggerRounds,
        TopK = spec.Protection.TopK, BatchSize = spec.Protection.BatchSize, StopLoss = spec.Protection.StopLoss, Seed = spec.ProtectionSeed,
        RobustTo = spec.Protection.RobustTo, UserShare = spec.Protection.UserShareOrDefault,
        RestartSurrogate = spec.Protection.RestartSurrogateOrDefault, Precision = spec.Protection.Precision,
        InputDiversity = spec.Protection.InputDiversity, EnsembleStep = spec.Protection.EnsembleStep, SkipErosion = spec.Protection.SkipErosion,
        // Fine-tuning attacks are protected against the pre-trained model at the fine-tuning rate: a hacker who
        // fine-tunes moves the model that little, so the surrogate should too.
        SurrogateLearningRate = spec.Attack.Mode == AttackMode.FineTune ? spec.Attack.LearningRate : null,
    }.Resolve(ProtectionOptions.Evaluation);

    /// <param name="surrogate">The surrogate for in-process protection (the pre-trained model when fine-tuning, a fresh one from scratch).</param>
    public (IReadOnlyList<CaptionedImage> Items, ProtectionSummary Summary) Run(IReadOnlyList<CaptionedImage> train, Func<ClipModel> surrogate, CancellationToken cancel)
    {
        if (File.Exists(SummaryPath))
        {
            var kept = CaptionsJsonl.Load(Folder).Items;
            if (kept.Count == train.Count)
                return (kept.Select((k, i) => train[i] with { Image = k.Image, Captions = k.Captions }).ToList(),
                    JsonSerializer.Deserialize<ProtectionSummary>(File.ReadAllText(SummaryPath), AttackSpec.Json)!);
        }
        var clock = Stopwatch.StartNew();
        string? posting = null;
        IReadOnlyList<CaptionedImage> items = spec.Protection.Source switch
        {
            ProtectionSource.Mem or ProtectionSource.Em => InProcess(train, surrogate, cancel, out posting),
            ProtectionSource.Folder => FromFolder(train),
            ProtectionSource.Sidecar => Posted(train, cancel, out posting),
            ProtectionSource.Posts => AsPosts(train, surrogate, cancel, out posting),
            _ => throw new SpecException("protection.source", $"'{SpecNames.Of(spec.Protection.Source)}' produces no protected data"),
        };
        var summary = Measure(train, items, clock.Elapsed.TotalSeconds) with { Posting = posting };

        if (Directory.Exists(Folder)) Directory.Delete(Folder, recursive: true);
        CaptionsJsonl.Save(new CaptionDataset("protected", items.Select((item, i) => item with { Id = i.ToString("D6", System.Globalization.CultureInfo.InvariantCulture) }).ToList()), Folder);
        File.WriteAllText(SummaryPath, JsonSerializer.Serialize(summary, AttackSpec.Json));
        return (items, summary);
    }

    IReadOnlyList<CaptionedImage> Posted(IReadOnlyList<CaptionedImage> train, CancellationToken cancel, out string posting)
    {
        var posts = new SidecarProtection(spec.Protection, Path.Combine(workDir, "sidecar"))
        {
            OnPost = (done, total) => OnProgress?.Invoke(JobProgress.Stage("protect", $"sidecar: {done}/{total} posts protected", done, total)),
        }.Protect(train, cancel);
        posting = posts.Describe();
        return posts.Items;
    }

    /// <summary>The sidecar's options at the spec's strength (medium by default; without one, at the spec's ε), for the in-process posts path.</summary>
    public static (ProtectionOptions Options, int Rounds) PostOptions(AttackSpec spec)
    {
        var level = StrengthLevel.Default(spec.Protection.Strength ?? ProtectionStrength.Medium);
        if (spec.Protection.Level is { } set) level = level with { Rounds = set.Rounds ?? level.Rounds, PgdSteps = set.PgdSteps ?? level.PgdSteps };
        double epsilon = spec.Protection.Strength is null ? spec.Protection.Epsilon : level.Epsilon;
        return (level.PostOptions(epsilon, spec.Protection.TriggerLengthOrDefault, spec.ProtectionSeed, spec.Protection.UserShareOrDefault,
            precision: spec.Protection.Precision ?? MatmulPrecision.Float32, inputDiversity: spec.Protection.InputDiversity ?? 0,
            ensembleStep: spec.Protection.EnsembleStep ?? EnsembleStep.Mean, skipErosion: spec.Protection.SkipErosion ?? 0), level.Rounds);
    }

    // The sidecar's default surrogates are the public model's architectures at the release it serves (the spec's seed); a
    // fine-tuning hacker who downloads one of them starts from it, one who downloads another (attack.preTrainSeed) does not,
    // and a hacker training from scratch never sees them. protection.members names other releases instead.
    IReadOnlyList<CaptionedImage> AsPosts(IReadOnlyList<CaptionedImage> train, Func<ClipModel> preTrained, CancellationToken cancel, out string posting)
    {
        var (options, rounds) = PostOptions(spec);
        var releases = spec.PostSurrogates();
        var members = new List<ClipModel>();
        try
        {
            foreach (var release in releases) members.Add(Member(release, preTrained, cancel));
            TorchRuntime.Seed(spec.ProtectionSeed);
            var run = new PostBatches(members, options, TriggerVocabulary.CommonWords, device)
            {
                Rounds = rounds,
                ScratchSurrogateSteps = spec.Protection.ScratchSurrogateSteps ?? 0,
                StickyTriggers = spec.Protection.StickyTriggers ?? false,
                OnBatch = (done, total) => OnProgress?.Invoke(JobProgress.Stage("protect", $"posts: {done}/{total} protected in micro-batches", done, total)),
            }.Protect(train, new ImageTensors(members[0].Config.Vision.ImageSize), Path.Combine(workDir, "posts"), cancel);
            var (published, _) = ProtectedDataset.Build(train, run, options.Epsilon, seed: spec.Seed);
            run.Noise.Dispose();
            int owners = train.Select(t => t.Owner).OfType<string>().Distinct().Count();
            posting = $"posted in micro-batches of {PostBatches.SidecarBatchSize} through the sidecar's batch path, against " +
                (spec.Protection.Members is not null ? Ensemble(releases) : releases.Count > 1 ? $"its default ensemble ({Listed(releases)})" : $"the public model ({Listed(releases)})") +
                (owners > 0 && options.UserBound > 0 ? $"; each of {owners} people's photos share their own pattern ({options.UserBound * 255:F0}/255 of ε)" : "") +
                (spec.Protection.StickyTriggers is true ? "; each person's first trigger kept for their later posts" : "") +
                (spec.Protection.Level is not null ? $"; {rounds} round(s) × {options.PgdSteps} PGD steps a micro-batch" : "") +
                Levers(options, releases.Count) + Hardened() +
                (spec.Protection.ScratchSurrogateSteps is > 0 and var steps ? $"; {steps} surrogate steps on a scratch copy before each batch" : "");
            return published;
        }
        finally
        {
            foreach (var member in members) member.Dispose();
        }
    }

    static string Ensemble(IReadOnlyList<SurrogateSpec> releases) => $"an ensemble of {releases.Count} public-model releases ({Listed(releases)})";

    static string Listed(IReadOnlyList<SurrogateSpec> releases) => string.Join(", ", releases.Select(r => $"{r.Preset} seed {r.Seed}"));

    /// <summary>The transfer levers in use, each as "; what it does", for the report.</summary>
    static string Levers(ProtectionOptions options, int members) => string.Concat(
        options.EnsembleStep == EnsembleStep.Drawn && members > 1 ? "; each PGD step follows one member drawn for it" : "",
        options.InputDiversity > 0 ? $"; {options.InputDiversity:P0} of PGD steps see a shrunk, padded view (input diversity)" : "",
        options.SkipErosion > 0 ? $"; the surrogates' residual skips scaled at random within ±{options.SkipErosion:G2} each PGD step (skip erosion)" : "");

    string Hardened() => spec.Protection.HardeningSettings(spec.ProtectionSeed) is { } h ? "; each surrogate first " + h.Describe() : "";

    /// <summary>
    /// One release of the public recipe: the hacker's own pre-trained model when it is that release, else trained here, resumably;
    /// with <c>protection.hardening</c>, a copy of it briefly adversarially fine-tuned, cached beside the releases.
    /// </summary>
    ClipModel Member(SurrogateSpec release, Func<ClipModel> preTrained, CancellationToken cancel)
    {
        if (spec.Protection.HardeningSettings(spec.ProtectionSeed) is not { } hardening) return Release(release, preTrained, cancel);
        var path = Path.Combine(workDir, "posts-public-models", hardening.FileName($"{release.Preset.ToLowerInvariant()}-seed{release.Seed}.safetensors"));
        if (File.Exists(path)) return ClipCheckpoint.Load(path, device);
        var model = Release(release, preTrained, cancel);
        try
        {
            hardening.Harden(model, AttackJob.PublicRecipe(spec, release.Seed), device, (step, loss) =>
            {
                if (hardening.IsReportStep(step))
                    OnProgress?.Invoke(JobProgress.Stage("protect", $"hardening {release.Preset} seed {release.Seed}: step {step + 1}/{hardening.Steps} loss {loss:F3}", step + 1, hardening.Steps));
            }, cancel);
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            ClipCheckpoint.SaveAtomically(model, path);
            return model;
        }
        catch
        {
            model.Dispose();   // not yet among the members the caller disposes
            throw;
        }
    }

    ClipModel Release(SurrogateSpec release, Func<ClipModel> preTrained, CancellationToken cancel)
    {
        bool hackers = spec.Attack.Mode == AttackMode.FineTune && release.Seed == spec.HackerRelease()
            && release.Preset.Equals(spec.Preset, StringComparison.OrdinalIgnoreCase);
        if (hackers) return preTrained();
        // The sidecar's own release keeps the folder jobs made before ensembles used.
        bool served = release.Seed == spec.Seed && release.Preset.Equals(spec.Preset, StringComparison.OrdinalIgnoreCase);
        var checkpoint = served
            ? Path.Combine(workDir, "posts-public-model", "model.safetensors")
            : Path.Combine(workDir, "posts-public-models", $"{release.Preset.ToLowerInvariant()}-seed{release.Seed}", "model.safetensors");
        Directory.CreateDirectory(Path.GetDirectoryName(checkpoint)!);
        return AttackJob.PublicRecipe(spec, release.Seed).Train(spec.Architecture(release.Preset), device, checkpoint, p =>
        {
            if (p.Step == p.StepsPerEpoch)
                OnProgress?.Invoke(JobProgress.Stage("protect", $"the public model ({release.Preset}, seed {release.Seed}): epoch {p.Epoch}/{p.Epochs}", p.Epoch, p.Epochs));
        }, cancel);
    }

    IReadOnlyList<CaptionedImage> InProcess(IReadOnlyList<CaptionedImage> train, Func<ClipModel> surrogateFactory, CancellationToken cancel, out string? posting)
    {
        var options = Options(spec);
        // Said only where it differs from the one surrogate the job describes already.
        var levers = Levers(options, spec.Protection.Members?.Count ?? 1);
        posting = spec.Protection.Members is { } named ? "in process against " + Ensemble(named) + levers
            : levers.Length > 0 ? "in process" + levers : null;
        var members = new List<ClipModel>();
        try
        {
            // The surrogate (the pre-trained model when fine-tuning, a fresh one from scratch), or the releases protection.members names.
            if (spec.Protection.Members is { } releases) foreach (var release in releases) members.Add(Member(release, surrogateFactory, cancel));
            TorchRuntime.Seed(spec.ProtectionSeed);
            if (members.Count == 0) members.Add(surrogateFactory());
            var vocabulary = spec.Protection.Vocabulary == "full" ? TriggerVocabulary.Full : TriggerVocabulary.CommonWords;
            var run = new DatasetProtector(members, train, new ImageTensors(members[0].Config.Vision.ImageSize), options, vocabulary, device, Path.Combine(workDir, "protection-run"))
            {
                OnProgress = p => OnProgress?.Invoke(JobProgress.Stage("protect", $"round {p.Round}/{p.Rounds} {p.Phase} loss {p.Loss:F3}", p.Batch, p.Batches)),
            }.Run(cancel);
            var (published, _) = ProtectedDataset.Build(train, run, options.Epsilon, seed: spec.Seed);
            run.Noise.Dispose();
            return published;
        }
        finally
        {
            foreach (var member in members) member.Dispose();
        }
    }

    IReadOnlyList<CaptionedImage> FromFolder(IReadOnlyList<CaptionedImage> train)
    {
        var byId = DatasetLoader.Load(spec.Protection.Path!).Of(Split.Train).ToDictionary(i => i.Id);
        var missing = train.Where(t => !byId.ContainsKey(t.Id)).Select(t => t.Id).ToList();
        if (missing.Count > 0)
            throw new SpecException("protection.path", $"{missing.Count} of {train.Count} training images have no protected version there (first: {missing[0]}); protect the same data set");
        // Ids are positions, so another data set of the same shape, or the same one captioned under another seed, matches
        // them too: each protected caption must be the clean one, with at most a trigger in front.
        if (train.FirstOrDefault(t => !Triggered(t.Captions, byId[t.Id].Captions)) is { } stranger)
            throw new SpecException("protection.path", $"image {stranger.Id}'s captions there are not its own with a trigger in front " +
                $"(\"{byId[stranger.Id].Captions[0]}\" for \"{stranger.Captions[0]}\"); protect the same data set, with this job's seed");
        return train.Select(t => t with { Image = byId[t.Id].Image, Captions = byId[t.Id].Captions }).ToList();
    }

    static bool Triggered(IReadOnlyList<string> clean, IReadOnlyList<string> published) =>
        clean.Count == published.Count && clean.Zip(published).All(p => p.Second.EndsWith(p.First, StringComparison.Ordinal));

    /// <summary>L∞, PSNR and SSIM on the decoded images, and the trigger words as the prefix the protection added to each caption.</summary>
    ProtectionSummary Measure(IReadOnlyList<CaptionedImage> clean, IReadOnlyList<CaptionedImage> protectedItems, double seconds)
    {
        var linf = new int[clean.Count];
        var psnr = new double[clean.Count];
        var ssim = new double[clean.Count];
        Parallel.For(0, clean.Count, i =>
        {
            using var a = SafeImageDecoder.Decode(clean[i].Image.ReadBytes(), what: clean[i].Image.Name);
            using var b = SafeImageDecoder.Decode(protectedItems[i].Image.ReadBytes(), what: protectedItems[i].Image.Name);
            bool same = a.Width == b.Width && a.Height == b.Height;
            (linf[i], psnr[i]) = same ? PixelDifference.Compare(a, b) : (-1, double.NaN);
            ssim[i] = same ? PixelDifference.Ssim(a, b) : double.NaN;
        });
        var triggers = clean.Zip(protectedItems, (c, p) => p.Captions[0].EndsWith(c.Captions[0], StringComparison.Ordinal)
            ? p.Captions[0][..^c.Captions[0].Length].Trim() : "").ToList();
        var ids = triggers.Where(t => t.Length > 0).Select(t => (IReadOnlyList<int>)ClipTokenizer.Default.EncodeRaw(t).ToArray()).ToList();
        var finite = psnr.Where(double.IsFinite).ToList();
        return new ProtectionSummary(SpecNames.Of(spec.Protection.Source), clean.Count, linf.Max(), finite.Count == 0 ? double.PositiveInfinity : finite.Average(),
            ids.Count == 0 ? null : EnglishWords.DictionaryShare(ids), seconds, triggers.Where(t => t.Length > 0).Distinct().Take(8).ToList(),
            ssim.Where(double.IsFinite).DefaultIfEmpty(double.NaN).Average());
    }
}
