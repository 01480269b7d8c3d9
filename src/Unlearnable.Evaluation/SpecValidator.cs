using Unlearnable.Clip.Model;
using Unlearnable.Data;
using Unlearnable.Data.Formats;
using Unlearnable.Imaging;
using Unlearnable.Protection;

namespace Unlearnable.Evaluation;

/// <summary>
/// Everything that can be checked before any training: names, ranges, and that the folders a
/// spec points at exist and hold what the job needs. A job that passes can still fail later
/// (a sidecar going away), but never because of a typo found after an hour of training.
/// </summary>
public static class SpecValidator
{
    public static void EnsureValid(AttackSpec spec)
    {
        var problems = Check(spec);
        if (problems.Count > 0) throw new SpecException(problems);
    }

    public static List<SpecViolation> Check(AttackSpec spec)
    {
        var problems = new List<SpecViolation>();
        void Fail(string field, string problem) => problems.Add(new SpecViolation(field, problem));
        string Known(IEnumerable<string> names) => string.Join(", ", names);

        if (string.IsNullOrWhiteSpace(spec.Name)) Fail("name", "must not be empty");
        if (!ClipPresets.Names.Contains(spec.Preset, StringComparer.OrdinalIgnoreCase))
            Fail("preset", $"unknown architecture '{spec.Preset}'; known: {Known(ClipPresets.Names)}");
        for (int i = 0; i < spec.Arms.TransferArchitectures.Count; i++)
            if (!ClipPresets.Names.Contains(spec.Arms.TransferArchitectures[i], StringComparer.OrdinalIgnoreCase))
                Fail($"arms.architectures[{i}]", $"unknown architecture '{spec.Arms.TransferArchitectures[i]}'; known: {Known(ClipPresets.Names)}");

        CheckData(spec.Data, Fail);
        CheckProtection(spec, Fail);
        CheckAttack(spec.Attack, TrainsPublicModels(spec), Fail);
        CheckPublicFaces(spec, Fail);
        CheckSearchData(spec, Fail);
        CheckSizes(spec, Fail);
        CheckReleases(spec, Fail);

        for (int i = 0; i < spec.Arms.PoisonFractions.Count; i++)
            if (!(spec.Arms.PoisonFractions[i] is >= 0 and <= 1))
                Fail($"arms.fractions[{i}]", $"{spec.Arms.PoisonFractions[i]} is outside 0–1 (the share of training pairs protected)");
        if (spec.Arms.PoisonFractions.Count > 0 && spec.Protection.Source == ProtectionSource.None)
            Fail("arms.fractions", "poison-fraction arms need a protection; protection.source is none");
        for (int i = 0; i < spec.Arms.HackerCountermeasures.Count; i++)
        {
            try
            {
                if (HackerDefence.Parse(spec.Arms.HackerCountermeasures[i]).NeedsPreTrainedModel && spec.Attack.Mode != AttackMode.FineTune)
                    Fail($"arms.countermeasures[{i}]", $"'{spec.Arms.HackerCountermeasures[i]}': the filter scores pairs with the hacker's pre-trained model; attack.mode {spec.Attack.Mode} has none");
            }
            catch (ArgumentException e) { Fail($"arms.countermeasures[{i}]", e.Message); }
        }
        return problems;
    }

    static void CheckData(DataSpec data, Action<string, string> fail)
    {
        switch (data.Kind)
        {
            case DataKind.SyntheticIdentities:
                if (data.Identities < 2) fail("data.identities", $"{data.Identities}: retrieval needs at least 2 people");
                if (data.Photos < 2) fail("data.photos", $"{data.Photos}: each person needs at least 2 photos (one is held out)");
                break;
            case DataKind.SyntheticScenes:
                if (data.TestImages < 2) fail("data.testImages", $"{data.TestImages}: the test split needs at least 2 images");
                if (data.Images - data.TestImages < 2) fail("data.images", $"{data.Images} images leave fewer than 2 for training after {data.TestImages} test images");
                break;
            case DataKind.Identities:
                if (RequireFolder(data.Path, "data.path", fail))
                {
                    try
                    {
                        var people = IdentityFolders.Load(data.Path!);
                        if (people.Count < 2) fail("data.path", $"{data.Path} has {people.Count} identity folder; retrieval needs at least 2");
                        var single = people.FirstOrDefault(p => p.Images.Count < 2);
                        if (single is not null) fail("data.path", $"{single.Name} has {single.Images.Count} photo; every person needs at least 2 (one is held out)");
                    }
                    catch (DataFormatException e) { fail("data.path", e.Message); }
                }
                break;
            case DataKind.Captions:
                if (RequireFolder(data.Path, "data.path", fail))
                {
                    try
                    {
                        var set = DatasetLoader.Load(data.Path!);
                        int train = set.Of(Split.Train).Count, test = set.Of(Split.Test).Count;
                        if (train < 2 || test < 2) fail("data.path", $"{data.Path} has {train} training and {test} test images; both splits need at least 2");
                    }
                    catch (Exception e) when (e is DataFormatException or IOException or InvalidDataException) { fail("data.path", e.Message); }
                }
                break;
        }
    }

    static void CheckProtection(AttackSpec spec, Action<string, string> fail)
    {
        var p = spec.Protection;
        if (p.Members is { } members) CheckMembers(spec, members, fail);
        if (p.ScratchSurrogateSteps is not null && p.Source != ProtectionSource.Posts)
            fail("protection.scratchSurrogateSteps", $"applies to posts; source '{SpecNames.Of(p.Source)}' trains its surrogate with surrogateSteps (a sidecar has its own Sidecar:Protection:ScratchSurrogateSteps)");
        else if (p.ScratchSurrogateSteps is < 0 or > 1_000) fail("protection.scratchSurrogateSteps", $"{p.ScratchSurrogateSteps}: give 0 to 1000");
        if (p.Hardening is { } hardening)
        {
            if (p.Source != ProtectionSource.Posts) fail("protection.hardening", $"applies to posts; source '{SpecNames.Of(p.Source)}' protects against its surrogate as it is");
            else if (!Protection.Robustness.AdversarialHardening.IsStepsSetting(hardening.Steps)) fail("protection.hardening.steps", $"{hardening.Steps}: give {Protection.Robustness.AdversarialHardening.StepsSettingRange}");
            // Steps 0 hardens nothing, so its ε is not read.
            else if (hardening.Steps > 0 && ProtectionStage.PostOptions(spec).Options.Epsilon * 255 is var epsilon && !(hardening.Epsilon > 0 && hardening.Epsilon <= epsilon + 1e-9))
                fail("protection.hardening.epsilon", $"{hardening.Epsilon} must be in (0, {epsilon:G4}] (1/255 units, at most the protection's ε)");
        }
        if (p.Level is { } level)
        {
            if (p.Source != ProtectionSource.Posts) fail("protection.level", $"applies to posts; " + p.Source switch
            {
                ProtectionSource.Mem or ProtectionSource.Em => $"source '{SpecNames.Of(p.Source)}' takes protection.rounds and protection.pgdSteps",
                ProtectionSource.Sidecar => "a sidecar protects at its own Sidecar:Protection:<Strength>:Rounds and :PgdSteps",
                _ => $"source '{SpecNames.Of(p.Source)}' runs no protection here",
            });
            else if (level is { Rounds: null, PgdSteps: null }) fail("protection.level", "names neither rounds nor pgdSteps; give one, or leave level out for the strength's own");
            else
            {
                if (level.Rounds is < 1 or > LevelSpec.MaxRounds) fail("protection.level.rounds", $"{level.Rounds}: give 1 to {LevelSpec.MaxRounds}");
                if (level.PgdSteps is < 1 or > LevelSpec.MaxPgdSteps) fail("protection.level.pgdSteps", $"{level.PgdSteps}: give 1 to {LevelSpec.MaxPgdSteps}");
            }
        }
        if (p.StickyTriggers is not null && p.Source != ProtectionSource.Posts)
            fail("protection.stickyTriggers", $"applies to posts; source '{SpecNames.Of(p.Source)}' has no posting users (a sidecar takes trigger_policy per post)");
        // Fields of the in-process protection (mem, em and the posts path); a sidecar or a folder protects elsewhere, where its own settings apply.
        bool inProcess = p.Source is ProtectionSource.Mem or ProtectionSource.Em or ProtectionSource.Posts;
        foreach (var (field, given, there) in new (string, bool, string)[]
        {
            ("userShare", p.UserShare is not null, " (a sidecar has its own Sidecar:Protection:UserShare)"),
            ("precision", p.Precision is not null, " (a sidecar has its own Sidecar:Model:Precision)"),
            ("inputDiversity", p.InputDiversity is not null, " (a sidecar has its own Sidecar:Protection:InputDiversity)"),
            ("skipErosion", p.SkipErosion is not null, " (a sidecar has its own Sidecar:Protection:SkipErosion)"),
            ("ensembleStep", p.EnsembleStep is not null, " (a sidecar has its own Sidecar:Protection:EnsembleStep)"),
            ("seed", p.Seed is not null, ""),
        })
            if (given && !inProcess) fail("protection." + field, $"applies to mem, em and posts; source '{SpecNames.Of(p.Source)}' protects elsewhere{there}");
        if (p.Seed is < 0) fail("protection.seed", $"{p.Seed}: a seed is 0 or more");
        switch (p.Source)
        {
            case ProtectionSource.None:
                return;
            case ProtectionSource.Folder:
                if (RequireFolder(p.Path, "protection.path", fail))
                {
                    try
                    {
                        if (DatasetLoader.Load(p.Path!).Of(Split.Train).Count == 0) fail("protection.path", $"{p.Path} has no training split");
                    }
                    catch (Exception e) when (e is DataFormatException or IOException or InvalidDataException) { fail("protection.path", e.Message); }
                }
                return;
            case ProtectionSource.Sidecar or ProtectionSource.Posts:
                if (p.Source == ProtectionSource.Sidecar && (!Uri.TryCreate(p.SidecarAddress, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https")))
                    fail("protection.sidecarAddress", $"'{p.SidecarAddress}' is not an http(s) address such as http://localhost:5051");
                break;
            case ProtectionSource.Mem or ProtectionSource.Em:
                if (p.Vocabulary is not ("common-words" or "full")) fail("protection.vocabulary", $"'{p.Vocabulary}': use common-words or full");
                break;
        }
        if (!(p.Epsilon > 0 && p.Epsilon <= 255)) fail("protection.epsilon", $"{p.Epsilon} must be in (0, 255] (1/255 units; 8 by default)");
        if (p.Source == ProtectionSource.Sidecar) return;
        if (!ClipPresets.Names.Contains(spec.Preset, StringComparer.OrdinalIgnoreCase)) return;
        var options = p.Source == ProtectionSource.Posts ? ProtectionStage.PostOptions(spec).Options : ProtectionStage.Options(spec);
        try { options.Validate(ClipPresets.Get(spec.Preset).Text.ContextLength); }
        catch (ArgumentOutOfRangeException e)
        {
            // A posts spec's PGD steps come from protection.level, checked above under that name.
            if (!(e.ParamName == nameof(ProtectionOptions.PgdSteps) && p.Level?.PgdSteps is not null))
                fail("protection." + char.ToLowerInvariant(e.ParamName![0]) + e.ParamName[1..], e.Message.Split(" (Parameter")[0]);
        }
    }

    static void CheckMembers(AttackSpec spec, IReadOnlyList<SurrogateSpec> members, Action<string, string> fail)
    {
        if (spec.Protection.Source is not (ProtectionSource.Posts or ProtectionSource.Mem or ProtectionSource.Em))
            fail("protection.members", $"applies to mem, em and posts; source '{SpecNames.Of(spec.Protection.Source)}' protects elsewhere");
        if (members.Count is 0 or > Surrogates.MaxMembers) fail("protection.members", $"{members.Count} members: give 1 to {Surrogates.MaxMembers}");
        var own = ClipPresets.Names.Contains(spec.Preset, StringComparer.OrdinalIgnoreCase) ? ClipPresets.Get(spec.Preset) : null;
        for (int i = 0; i < members.Count; i++)
        {
            if (members[i] is null || !ClipPresets.Names.Contains(members[i].Preset, StringComparer.OrdinalIgnoreCase))
            {
                fail($"protection.members[{i}].preset", $"'{members[i]?.Preset}' is not a preset; known: {string.Join(", ", ClipPresets.Names)}");
                continue;
            }
            var config = ClipPresets.Get(members[i].Preset);
            if (own is not null && (config.Vision.ImageSize != own.Vision.ImageSize || config.Text.ContextLength != own.Text.ContextLength))
                fail($"protection.members[{i}].preset", $"'{members[i].Preset}' reads {config.Vision.ImageSize}-pixel images and {config.Text.ContextLength}-token captions; " +
                    $"every member must read what '{spec.Preset}' reads ({own.Vision.ImageSize} pixels, {own.Text.ContextLength} tokens)");
        }
    }

    /// <summary>Whether protection trains public-model releases whatever the mode: the posts path, and any protection that names members.</summary>
    static bool TrainsPublicModels(AttackSpec spec) => spec.Protection.Source == ProtectionSource.Posts || spec.Protection.Members is not null;

    /// <param name="trainsPublicModel">The protection trains the public models the pre-training fields describe, whatever the mode.</param>
    static void CheckAttack(HackerSpec attack, bool trainsPublicModel, Action<string, string> fail)
    {
        if (attack.Epochs < 1) fail("attack.epochs", $"{attack.Epochs}: at least 1");
        if (!(attack.LearningRate > 0)) fail("attack.learningRate", $"{attack.LearningRate}: must be positive");
        if (attack.BatchSize < 2) fail("attack.batchSize", $"{attack.BatchSize}: a contrastive batch needs at least 2 pairs");
        if (attack.RecipeSearch is { } search)
        {
            if (search.Grid.Count is 0 or > RecipeSearchSpec.MaxGrid) fail("attack.recipeSearch.learningRates", $"{search.Grid.Count} learning rates: give 1 to {RecipeSearchSpec.MaxGrid}");
            for (int i = 0; i < search.Grid.Count; i++)
                if (!(search.Grid[i] is > 0 and <= 1)) fail($"attack.recipeSearch.learningRates[{i}]", $"{search.Grid[i]}: a learning rate in (0, 1]");
            if (search.MaxEpochs is < 1 or > 1_000) fail("attack.recipeSearch.maxEpochs", $"{search.MaxEpochs}: 1 to 1,000");
            if (search.Patience < 1) fail("attack.recipeSearch.patience", $"{search.Patience}: at least 1 epoch");
        }
        if (attack.Mode != AttackMode.FineTune && !trainsPublicModel) return;
        if (attack.PreTrained is { } path && attack.Mode == AttackMode.FineTune)
        {
            if (!File.Exists(path)) fail("attack.preTrained", $"checkpoint {path} does not exist");
        }
        else
        {
            if (attack.PreTrainImages < PublicModel.MinImages) fail("attack.preTrainImages", $"{attack.PreTrainImages}: at least {PublicModel.MinImages}");
            if (attack.PreTrainEpochs < 1) fail("attack.preTrainEpochs", $"{attack.PreTrainEpochs}: at least 1");
        }
    }

    /// <summary>
    /// The public faces, wherever they are given (transfer architectures pre-train on them even beside a <c>preTrained</c> file):
    /// readable identity folders, none of them a person the job evaluates (a public model that has seen them would overstate the hacker).
    /// </summary>
    static void CheckPublicFaces(AttackSpec spec, Action<string, string> fail)
    {
        if (spec.Attack.PreTrainFaces is not { } faces || !RequireFolder(faces, "attack.preTrainFaces", fail)) return;
        try
        {
            var names = IdentityFolders.Load(faces).Select(p => p.Name).ToHashSet(StringComparer.OrdinalIgnoreCase);
            if (spec.Data.Kind == DataKind.Identities && spec.Data.Path is { } data && Directory.Exists(data)
                && IdentityFolders.Load(data).FirstOrDefault(p => names.Contains(p.Name)) is { } shared)
                fail("attack.preTrainFaces", $"{shared.Name} is both in the public faces and in data.path; the public model must never have seen the people evaluated");
        }
        catch (Exception e) when (e is DataFormatException or IOException or UnauthorizedAccessException) { fail("attack.preTrainFaces", e.Message); }
    }

    /// <summary>The recipe search validates on one training photo per person: people need 3 photos (one held out, one to validate on).</summary>
    static void CheckSearchData(AttackSpec spec, Action<string, string> fail)
    {
        if (spec.Attack.RecipeSearch is null) return;
        if (spec.Data.Kind == DataKind.SyntheticIdentities && spec.Data.Photos < 3)
            fail("data.photos", $"{spec.Data.Photos}: attack.recipeSearch needs 3 photos a person (one held out, one to validate on, one to train on)");
        if (spec.Data.Kind == DataKind.Identities && spec.Data.Path is { } path && Directory.Exists(path))
        {
            try
            {
                if (IdentityFolders.Load(path).Count(p => p.Images.Count >= 3) < 2)
                    fail("data.path", "attack.recipeSearch needs at least 2 people with 3 photos (one held out, one to validate on, one to train on)");
            }
            catch (DataFormatException) { }   // reported by the data check
        }
    }

    /// <summary>
    /// Upper bounds on every size a spec sets: generous for real studies, but a spec can never ask a host
    /// for more images, steps or arms than a machine could hold or finish.
    /// </summary>
    static void CheckSizes(AttackSpec spec, Action<string, string> fail)
    {
        bool over = false;
        void AtMost(string field, double value, double limit)
        {
            if (value <= limit) return;
            over = true;
            fail(field, $"{value:G} exceeds the limit {limit:N0}; the limit is there so that no spec can exhaust a host");
        }
        AtMost("name", spec.Name.Length, 200);
        var (d, p, a) = (spec.Data, spec.Protection, spec.Attack);
        AtMost("data.identities", d.Identities, 10_000);
        AtMost("data.photos", d.Photos, 1_000);
        AtMost("data.images", d.Images, 200_000);
        AtMost("data.testImages", d.TestImages, 50_000);
        AtMost("protection.rounds", p.Rounds, 1_000);
        AtMost("protection.surrogateSteps", p.SurrogateSteps, 100_000);
        AtMost("protection.pgdSteps", p.PgdSteps, 1_000);
        AtMost("protection.triggerRounds", p.TriggerRounds, 1_000);
        AtMost("protection.topK", p.TopK, 1_000);
        AtMost("protection.batchSize", p.BatchSize, 4_096);
        AtMost("attack.epochs", a.Epochs, 1_000);
        AtMost("attack.batchSize", a.BatchSize, 4_096);
        AtMost("attack.warmupSteps", a.WarmupSteps, 1_000_000);
        AtMost("attack.preTrainImages", a.PreTrainImages, PublicModel.MaxImages);
        AtMost("attack.preTrainEpochs", a.PreTrainEpochs, PublicModel.MaxEpochs);
        AtMost("arms.architectures", spec.Arms.TransferArchitectures.Count, 8);
        AtMost("arms.fractions", spec.Arms.PoisonFractions.Count, 16);
        AtMost("arms.countermeasures", spec.Arms.HackerCountermeasures.Count, 16);
        AtMost("arms.releases", spec.Arms.HackerReleases.Count, 8);
        if (!over) CheckWholeJob(spec, fail);   // a field over its own bound is the reason given; planning that job would itself be costly
    }

    /// <summary>The whole job's size, which bounds on each field alone do not bound (10,000 people × 1,000 photos is 10 million images).</summary>
    public const long MaxGeneratedImages = 200_000, MaxArms = 64, MaxTrainingPairEpochs = 50_000_000, MaxPreTrainingPairEpochs = 50_000_000;

    static void CheckWholeJob(AttackSpec spec, Action<string, string> fail)
    {
        var (d, a) = (spec.Data, spec.Attack);
        long images = d.Kind switch
        {
            DataKind.SyntheticIdentities => (long)d.Identities * d.Photos,
            DataKind.SyntheticScenes => (long)d.Images + d.TestImages,
            _ => 0,   // a folder's own size bounds it
        };
        if (images > MaxGeneratedImages)
            fail("data", $"{images:N0} images to generate (identities × photos, or images + testImages); the limit is {MaxGeneratedImages:N0} for one job");
        var plan = ArmPlan.For(spec);
        int trained = plan.Count(arm => arm.Kind != ArmKinds.PreTrained);
        if (plan.Count > MaxArms)
            fail("arms", $"{plan.Count} arms (each architecture and release × pre-trained, clean, protected, plus fractions and defences); the limit is {MaxArms} for one job");
        int epochs = a.RecipeSearch?.MaxEpochs ?? a.Epochs;   // a recipe search may train up to its longest
        long pairEpochs = Math.Max(images, 1) * epochs * trained;
        if (images > 0 && pairEpochs > MaxTrainingPairEpochs)
            fail("attack.epochs", $"{pairEpochs:N0} training pair-epochs ({images:N0} images × {epochs} epochs × {trained} trained arms); the limit is {MaxTrainingPairEpochs:N0} for one job");
        if (a.Mode == AttackMode.FineTune || TrainsPublicModels(spec))
        {
            long models = plan.Select(arm => (arm.Architecture.ToLowerInvariant(), arm.Release)).Distinct().Count() + spec.ProtectionReleases().Count;
            long preTraining = (long)a.PreTrainImages * a.PreTrainEpochs * models;
            if (preTraining > MaxPreTrainingPairEpochs)
                fail("attack.preTrainEpochs", $"{preTraining:N0} pre-training pair-epochs ({a.PreTrainImages:N0} scenes × {a.PreTrainEpochs} epochs × {models} public models); the limit is {MaxPreTrainingPairEpochs:N0} for one job");
        }
    }

    /// <summary>Other releases must be ones a fine-tuning hacker downloads, and ones the protection was not made from.</summary>
    static void CheckReleases(AttackSpec spec, Action<string, string> fail)
    {
        var releases = spec.Arms.HackerReleases;
        if (releases.Count > 0 && spec.Attack.Mode != AttackMode.FineTune)
            fail("arms.releases", $"a hacker in attack.mode {SpecNames.Of(spec.Attack.Mode)} downloads no public model; releases apply to fine-tune");
        var made = spec.ProtectionReleases().OfType<SurrogateSpec>()
            .GroupBy(m => m.Seed).ToDictionary(g => g.Key, g => string.Join(", ", g.Select(m => m.Preset)));
        int hackers = spec.HackerRelease();
        for (int i = 0; i < releases.Count; i++)
        {
            string field = $"arms.releases[{i}]";
            if (releases[i] < 0) fail(field, $"{releases[i]}: a release is a seed, 0 or more");
            else if (releases[i] == hackers) fail(field, $"{releases[i]} is the hacker's own release (attack.preTrainSeed, else seed): its arms are there already");
            else if (made.TryGetValue(releases[i], out var preset)) fail(field, $"{releases[i]} is a release the protection was made from ({preset}); list releases no member was made from");
            else if (releases.Take(i).Contains(releases[i])) fail(field, $"{releases[i]} is listed twice");
        }
    }

    static bool RequireFolder(string? path, string field, Action<string, string> fail)
    {
        if (string.IsNullOrWhiteSpace(path)) { fail(field, "required for this kind"); return false; }
        if (!Directory.Exists(path)) { fail(field, $"folder {path} does not exist"); return false; }
        return true;
    }
}
