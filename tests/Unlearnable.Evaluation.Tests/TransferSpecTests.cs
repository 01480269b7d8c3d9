using Unlearnable.Clip.Checkpoints;
using Unlearnable.Evaluation;
using Unlearnable.Tests;
using static TorchSharp.torch;

namespace Unlearnable.Evaluation.Tests;

/// <summary>Jobs that measure transfer (issue 24): the hacker's public release named apart from the releases the protection is made against.</summary>
public class TransferSpecTests
{
    [Fact]
    public void MembersNamingUnknownOrMismatchedPresetsAreRefusedNamingTheField()
    {
        var posts = new ProtectionSpec(ProtectionSource.Posts, Members: [new("tiny", 0), new("rn49", 1), new("small", 2)]);
        var fields = SpecValidator.Check(new AttackSpec { Protection = posts }).Select(v => v.Field).ToList();
        Assert.Equal(["protection.members[1].preset", "protection.members[2].preset"], fields);
        Assert.Contains("every member must read what 'tiny' reads", SpecValidator.Check(new AttackSpec { Protection = posts }).Last().Problem);
        Assert.Empty(SpecValidator.Check(new AttackSpec { Protection = new ProtectionSpec(ProtectionSource.Mem, Members: [new("tiny", 0)]) }));
        // Members are public models this job trains, even for a hacker who trains from scratch: their recipe is checked.
        Assert.Equal("attack.preTrainImages", Assert.Single(SpecValidator.Check(new AttackSpec
        {
            Protection = new ProtectionSpec(ProtectionSource.Mem, Members: [new("tiny", 0)]), Attack = new HackerSpec(AttackMode.FromScratch, PreTrainImages: 1),
        })).Field);
        Assert.Equal("protection.members", Assert.Single(SpecValidator.Check(new AttackSpec { Protection = new ProtectionSpec(ProtectionSource.Sidecar, SidecarAddress: "http://127.0.0.1:1", Members: [new("tiny", 0)]) })).Field);
        Assert.Equal("protection.members", Assert.Single(SpecValidator.Check(new AttackSpec { Protection = new ProtectionSpec(ProtectionSource.Posts, Members: []) })).Field);
        Assert.Empty(SpecValidator.Check(new AttackSpec { Protection = posts with { Members = [new("tiny", 0), new("tiny-vit", 1)] } }));

        var parsed = AttackSpec.Parse(""" { "protection": { "source": "posts", "members": [ { "preset": "tiny-vit", "seed": 3 } ] }, "attack": { "preTrainSeed": 9 } } """);
        Assert.Equal((new SurrogateSpec("tiny-vit", 3), 9), (Assert.Single(parsed.Protection.Members!), parsed.Attack.PreTrainSeed));
        // Unset, neither is written: job folders from before resume.
        Assert.DoesNotContain("members", new AttackSpec().ToJson());
        Assert.DoesNotContain("preTrainSeed", new AttackSpec().ToJson());
    }

    [Fact]
    public void AJobProtectsAgainstItsMembersWhileTheHackerFineTunesAnotherRelease()
    {
        var output = TestFolders.New();
        var spec = new AttackSpec
        {
            Name = "transfer", Seed = 0,
            Data = new DataSpec(DataKind.SyntheticIdentities, Identities: 4, Photos: 3),
            // Unhardened (steps 0): the test is of the members, and hardening has its own below.
            Protection = new ProtectionSpec(ProtectionSource.Posts, TriggerLength: 2, Members: [new("tiny", 0), new("tiny-vit", 1)], Hardening: new HardeningSpec(Steps: 0)),
            Attack = new HackerSpec(AttackMode.FineTune, Epochs: 1, LearningRate: 1e-4, BatchSize: 8, WarmupSteps: 1, PreTrainImages: 16, PreTrainEpochs: 1, PreTrainSeed: 7),
            Arms = new ArmsSpec(Countermeasures: ["grayscale"], Releases: [5]),
        };
        var report = new AttackJob(spec, CPU, output).Run();

        Assert.Contains("an ensemble of 2 public-model releases (tiny seed 0, tiny-vit seed 1)", report.Protection!.Posting);
        var work = Path.Combine(output, "work");
        using var hackers = ClipCheckpoint.Load(Path.Combine(work, "pretrained", "tiny.safetensors"), CPU);
        using var member = ClipCheckpoint.Load(Path.Combine(work, "posts-public-model", "model.safetensors"), CPU);
        Assert.True(File.Exists(Path.Combine(work, "posts-public-models", "tiny-vit-seed1", "model.safetensors")));
        Assert.False(hackers.TokenEmbeddingMatrix.eq(member.TokenEmbeddingMatrix).all().item<bool>(), "the hacker's release (seed 7) is the protection's (seed 0)");
        Assert.Contains(report.Arms, a => a.Kind == ArmKinds.Protected);

        // arms.releases: the same arms again for a hacker who downloads release 5, each scored against its own clean hacker.
        Assert.Equal(["pre-trained [release 5]", "clean [release 5]", "protected [release 5]", "protected + grayscale [release 5]"],
            report.Arms.Where(a => a.Release == 5).Select(a => a.Name));
        using (var fifth = ClipCheckpoint.Load(Path.Combine(work, "pretrained", "tiny-release5.safetensors"), CPU))
            Assert.False(fifth.TokenEmbeddingMatrix.eq(hackers.TokenEmbeddingMatrix).all().item<bool>(), "release 5 is another download than release 7");
        var (clean5, start5, protected5) = (report.Arm("clean [release 5]")!, report.Arm("pre-trained [release 5]")!, report.Arm("protected [release 5]")!);
        double gain = clean5.I2T.Hit10 - start5.I2T.Hit10;
        double? expected = gain < 100.0 / report.TestImages ? null : 100 * (clean5.I2T.Hit10 - protected5.I2T.Hit10) / gain;
        Assert.Equal(expected, report.ProtectionKept(protected5, Direction.ImageToText));
        Assert.Contains(report.Verdict!.Arms, a => a.Arm == "protected [release 5]");
        var md = File.ReadAllText(Path.Combine(output, "report.md"));
        Assert.Contains("## Other releases of the public model", md);
        Assert.True(File.Exists(Path.Combine(output, "i2t-hit10-releases.png")));
    }

    [Fact]
    public void OtherReleasesMustBeUnseenDownloadsOfAFineTuningHacker()
    {
        var posts = new ProtectionSpec(ProtectionSource.Posts, Members: [new("tiny", 0), new("tiny-vit", 1)]);
        List<string> Fields(AttackSpec spec) => SpecValidator.Check(spec).Select(v => v.Field).ToList();
        var spec = new AttackSpec { Seed = 0, Protection = posts, Attack = new HackerSpec(PreTrainSeed: 4) };
        Assert.Empty(Fields(spec with { Arms = new ArmsSpec(Releases: [2, 3]) }));
        // A negative seed, the hacker's own release, a member's release, one listed twice.
        Assert.Equal(["arms.releases[0]", "arms.releases[1]", "arms.releases[2]", "arms.releases[4]"], Fields(spec with { Arms = new ArmsSpec(Releases: [-1, 4, 1, 2, 2]) }));
        Assert.Contains("the protection was made from (tiny-vit)", SpecValidator.Check(spec with { Arms = new ArmsSpec(Releases: [1]) }).Single().Problem);
        // Without members the posts path protects against the sidecar's default ensemble at the spec's seed, or, for a hacker
        // of another architecture, that preset's release (as a sidecar whose Preset names it).
        Assert.Equal([new SurrogateSpec("tiny", 4), new SurrogateSpec("tiny-vit", 4)], new AttackSpec { Seed = 4, Preset = "tiny-vit", Protection = new ProtectionSpec(ProtectionSource.Posts) }.PostSurrogates());
        Assert.Equal([new SurrogateSpec("small", 4)], new AttackSpec { Seed = 4, Preset = "small", Protection = new ProtectionSpec(ProtectionSource.Posts) }.PostSurrogates());
        Assert.Equal(["arms.releases[0]"], Fields(spec with { Protection = new ProtectionSpec(ProtectionSource.Posts), Arms = new ArmsSpec(Releases: [0]) }));
        Assert.Equal(["arms.releases"], Fields(new AttackSpec { Attack = new HackerSpec(AttackMode.FromScratch), Arms = new ArmsSpec(Releases: [3]) }));

        // The sidecar's per-user settings apply to the posts path only.
        Assert.Empty(Fields(spec with { Protection = posts with { ScratchSurrogateSteps = 5, StickyTriggers = true } }));
        Assert.Equal(["protection.scratchSurrogateSteps", "protection.stickyTriggers"],
            Fields(new AttackSpec { Protection = new ProtectionSpec(ProtectionSource.Mem, ScratchSurrogateSteps: 5, StickyTriggers: true) }));
        Assert.Equal(["protection.scratchSurrogateSteps"], Fields(spec with { Protection = posts with { ScratchSurrogateSteps = -1 } }));

        var parsed = AttackSpec.Parse(""" { "arms": { "releases": [ 100, 101 ] } } """);
        Assert.Equal([100, 101], parsed.Arms.HackerReleases);
        Assert.DoesNotContain("releases", new AttackSpec().ToJson());
        var plan = ArmPlan.For(parsed with { Protection = new ProtectionSpec(ProtectionSource.None), Arms = parsed.Arms with { Architectures = ["tiny-vit"] } });
        Assert.Equal(["pre-trained", "clean", "pre-trained [tiny-vit]", "clean [tiny-vit]", "pre-trained [release 100]", "clean [release 100]",
            "pre-trained [tiny-vit, release 100]", "clean [tiny-vit, release 100]", "pre-trained [release 101]", "clean [release 101]",
            "pre-trained [tiny-vit, release 101]", "clean [tiny-vit, release 101]"], plan.Select(a => a.Name));
        Assert.Equal(plan.Count, plan.Select(a => a.Slug).Distinct().Count());
    }

    [Fact]
    public void TransferLeversReachBothProtectionPathsAndAreRefusedWhereTheyCannotApply()
    {
        var spec = AttackSpec.Parse(""" { "protection": { "source": "posts", "inputDiversity": 0.5, "ensembleStep": "drawn" } } """);
        Assert.Empty(SpecValidator.Check(spec));
        var posts = ProtectionStage.PostOptions(spec).Options;
        Assert.Equal((0.5, Protection.EnsembleStep.Drawn), (posts.InputDiversity, posts.EnsembleStep));
        var mem = ProtectionStage.Options(spec with { Protection = spec.Protection with { Source = ProtectionSource.Mem } });
        Assert.Equal((0.5, Protection.EnsembleStep.Drawn), (mem.InputDiversity, mem.EnsembleStep));
        Assert.Contains("\"ensembleStep\": \"drawn\"", spec.ToJson());
        // Unset, they stay out of the saved spec (job folders from before them resume) and the options are the authors' loop.
        Assert.DoesNotContain("inputDiversity", new AttackSpec().ToJson());
        Assert.Equal((0.0, Protection.EnsembleStep.Mean), (ProtectionStage.PostOptions(new AttackSpec()).Options.InputDiversity, ProtectionStage.PostOptions(new AttackSpec()).Options.EnsembleStep));

        List<string> Fields(ProtectionSpec p) => SpecValidator.Check(new AttackSpec { Protection = p }).Select(v => v.Field).ToList();
        Assert.Equal(["protection.inputDiversity"], Fields(new ProtectionSpec(ProtectionSource.Posts, InputDiversity: 1.5)));
        Assert.Equal(["protection.skipErosion"], Fields(new ProtectionSpec(ProtectionSource.Posts, SkipErosion: 1)));
        Assert.Equal(0.25, ProtectionStage.PostOptions(new AttackSpec { Protection = new ProtectionSpec(ProtectionSource.Posts, SkipErosion: 0.25) }).Options.SkipErosion);
        Assert.Equal(0.25, ProtectionStage.Options(new AttackSpec { Protection = new ProtectionSpec(ProtectionSource.Mem, SkipErosion: 0.25) }).SkipErosion);
        Assert.Contains("[0, 1]", SpecValidator.Check(new AttackSpec { Protection = new ProtectionSpec(ProtectionSource.Mem, InputDiversity: -0.1) }).Single().Problem);
        Assert.Equal(["protection.inputDiversity", "protection.ensembleStep"],
            Fields(new ProtectionSpec(ProtectionSource.Sidecar, SidecarAddress: "http://127.0.0.1:1", InputDiversity: 0.5, EnsembleStep: Protection.EnsembleStep.Drawn)));
        // protection.seed repeats the protection alone: the data's seed stays the job's.
        var again = AttackSpec.Parse(""" { "seed": 3, "protection": { "source": "posts", "seed": 11 } } """);
        Assert.Equal((11, 11, 3), (ProtectionStage.PostOptions(again).Options.Seed, ProtectionStage.Options(again with { Protection = again.Protection with { Source = ProtectionSource.Mem } }).Seed, again.Seed));
        Assert.Equal(3, ProtectionStage.PostOptions(again with { Protection = again.Protection with { Seed = null } }).Options.Seed);
        Assert.Equal(["protection.seed"], Fields(new ProtectionSpec(ProtectionSource.Posts, Seed: -1)));
        Assert.Equal(["protection.seed"], Fields(new ProtectionSpec(ProtectionSource.None, Seed: 2)));
        // Hardening: posts only, an adversary no stronger than the protection, a bounded number of steps.
        var hardened = AttackSpec.Parse(""" { "protection": { "source": "posts", "hardening": { "epsilon": 1, "steps": 50 } } } """);
        Assert.Empty(SpecValidator.Check(hardened));
        Assert.Equal(new Protection.Robustness.AdversarialHardening(1.0 / 255, 50, Seed: 11), hardened.Protection.HardeningSettings(11));
        Assert.DoesNotContain("hardening", new AttackSpec().ToJson());
        Assert.Equal(["protection.hardening"], Fields(new ProtectionSpec(ProtectionSource.Mem, Hardening: new HardeningSpec())));
        Assert.Equal(["protection.hardening.epsilon"], Fields(new ProtectionSpec(ProtectionSource.Posts, Hardening: new HardeningSpec(Epsilon: 9))));
        Assert.Equal(["protection.hardening.epsilon"], Fields(new ProtectionSpec(ProtectionSource.Posts, Hardening: new HardeningSpec(Epsilon: 0))));
        Assert.Equal(["protection.hardening.steps"], Fields(new ProtectionSpec(ProtectionSource.Posts, Hardening: new HardeningSpec(Steps: -1))));
        // Posts are hardened as the sidecar hardens by default unless steps is 0; other sources protect against their surrogate as it is.
        Assert.Equal(new Protection.Robustness.AdversarialHardening(2.0 / 255, 600, Seed: 4), new ProtectionSpec(ProtectionSource.Posts).HardeningSettings(4));
        Assert.Equal(600, new ProtectionSpec(ProtectionSource.Posts, Hardening: new HardeningSpec(Epsilon: 1)).HardeningSettings(0)!.Steps);
        Assert.Empty(Fields(new ProtectionSpec(ProtectionSource.Posts, Hardening: new HardeningSpec(Steps: 0))));
        Assert.Empty(Fields(new ProtectionSpec(ProtectionSource.Posts, Epsilon: 1, Hardening: new HardeningSpec(Epsilon: 0, Steps: 0))));   // nothing hardened: ε unread
        Assert.Null(new ProtectionSpec(ProtectionSource.Posts, Hardening: new HardeningSpec(Steps: 0)).HardeningSettings(0));
        Assert.Null(new ProtectionSpec(ProtectionSource.Mem).HardeningSettings(0));
        // Posts get the sidecar's trigger length unless the spec names one; in-process methods the authors' 3.
        Assert.Equal((Protection.StrengthLevel.DefaultTriggerLength, 3, 2), (ProtectionStage.PostOptions(new AttackSpec { Protection = new ProtectionSpec(ProtectionSource.Posts) }).Options.TriggerLength,
            ProtectionStage.Options(new AttackSpec()).TriggerLength, ProtectionStage.PostOptions(AttackSpec.Parse(""" { "protection": { "source": "posts", "triggerLength": 2 } } """)).Options.TriggerLength));
        Assert.DoesNotContain("triggerLength", new AttackSpec().ToJson());
        var refused = Assert.Single(Assert.Throws<SpecException>(() => AttackSpec.Parse(""" { "protection": { "ensembleStep": "sometimes" } } """)).Violations);
        Assert.Equal("protection.ensembleStep", refused.Field);
        Assert.Contains("use mean, drawn", refused.Problem);
    }

    [Fact]
    public void APostsSpecSetsTheLevelsRoundsAndPgdStepsAsASidecarConfiguredSoWouldAndNoOtherSourceDoes()
    {
        var medium = Protection.StrengthLevel.Default(Protection.ProtectionStrength.Medium);
        var asSet = ProtectionStage.PostOptions(AttackSpec.Parse(""" { "protection": { "source": "posts", "level": { "rounds": 3, "pgdSteps": 12 } } } """));
        Assert.Equal((3, 12), (asSet.Rounds, asSet.Options.PgdSteps));
        var stepsOnly = ProtectionStage.PostOptions(new AttackSpec { Protection = new ProtectionSpec(ProtectionSource.Posts, Level: new LevelSpec(PgdSteps: 4)) });
        Assert.Equal((medium.Rounds, 4), (stepsOnly.Rounds, stepsOnly.Options.PgdSteps));
        var unset = ProtectionStage.PostOptions(new AttackSpec { Protection = new ProtectionSpec(ProtectionSource.Posts) });
        Assert.Equal((medium.Rounds, medium.PgdSteps), (unset.Rounds, unset.Options.PgdSteps));
        Assert.DoesNotContain("level", new AttackSpec { Protection = new ProtectionSpec(ProtectionSource.Posts) }.ToJson());   // older job folders resume

        List<string> Fields(ProtectionSpec p) => SpecValidator.Check(new AttackSpec { Protection = p }).Select(v => v.Field).ToList();
        Assert.Equal(["protection.level"], Fields(new ProtectionSpec(ProtectionSource.Mem, Level: new LevelSpec(Rounds: 3))));
        Assert.Equal(["protection.level.rounds", "protection.level.pgdSteps"], Fields(new ProtectionSpec(ProtectionSource.Posts, Level: new LevelSpec(0, LevelSpec.MaxPgdSteps + 1))));
        Assert.Contains("give 1 to 20", SpecValidator.Check(new AttackSpec { Protection = new ProtectionSpec(ProtectionSource.Posts, Level: new LevelSpec(Rounds: 21)) }).Single().Problem);
        Assert.Equal(["protection.level.pgdSteps"], Fields(new ProtectionSpec(ProtectionSource.Posts, Level: new LevelSpec(PgdSteps: 0))));   // not also protection.pgdSteps
        Assert.Contains("names neither", SpecValidator.Check(new AttackSpec { Protection = new ProtectionSpec(ProtectionSource.Posts, Level: new LevelSpec()) }).Single().Problem);
        Assert.Contains("Sidecar:Protection:<Strength>:Rounds", SpecValidator.Check(new AttackSpec
            { Protection = new ProtectionSpec(ProtectionSource.Sidecar, SidecarAddress: "http://127.0.0.1:1", Level: new LevelSpec(Rounds: 3)) }).Single(v => v.Field == "protection.level").Problem);
    }

    [Fact]
    public void InProcessMemProtectsAgainstTheReleasesItsMembersName()
    {
        var output = TestFolders.New();
        var spec = new AttackSpec
        {
            Name = "dataset ensemble", Seed = 0,
            Data = new DataSpec(DataKind.SyntheticIdentities, Identities: 4, Photos: 3),
            Protection = new ProtectionSpec(ProtectionSource.Mem, TriggerLength: 1, Rounds: 1, SurrogateSteps: 1, PgdSteps: 1, TriggerRounds: 1, TopK: 2, BatchSize: 6,
                Members: [new("tiny", 2), new("tiny-vit", 3)], EnsembleStep: Protection.EnsembleStep.Drawn),
            Attack = new HackerSpec(AttackMode.FineTune, Epochs: 1, LearningRate: 1e-4, BatchSize: 8, WarmupSteps: 1, PreTrainImages: 16, PreTrainEpochs: 1, PreTrainSeed: 7),
            Arms = new ArmsSpec(Countermeasures: []),
        };
        var report = new AttackJob(spec, CPU, output).Run();

        var work = Path.Combine(output, "work");
        // Both releases were trained for the protection, neither is the hacker's, and each took its own surrogate steps.
        foreach (var member in new[] { "tiny-seed2", "tiny-vit-seed3" })
            Assert.True(File.Exists(Path.Combine(work, "posts-public-models", member, "model.safetensors")), member + " was not trained");
        Assert.True(File.Exists(Path.Combine(work, "protection-run", "surrogate-member1.safetensors")), "the second member took no surrogate steps");
        Assert.Contains(report.Arms, a => a.Kind == ArmKinds.Protected);
        Assert.InRange(report.Protection!.MaxLInfinity, 1, 8);
        Assert.Equal("in process against an ensemble of 2 public-model releases (tiny seed 2, tiny-vit seed 3); each PGD step follows one member drawn for it",
            report.Protection.Posting);
    }

    [Fact]
    public void HardeningFineTunesACopyOfTheSurrogateAndSaysSo()
    {
        var output = TestFolders.New();
        var spec = new AttackSpec
        {
            Name = "hardened surrogate", Seed = 0,
            Data = new DataSpec(DataKind.SyntheticIdentities, Identities: 4, Photos: 3),
            Protection = new ProtectionSpec(ProtectionSource.Posts, TriggerLength: 1, Hardening: new HardeningSpec(Epsilon: 2, Steps: 2)),
            Attack = new HackerSpec(AttackMode.FineTune, Epochs: 1, LearningRate: 1e-4, BatchSize: 8, WarmupSteps: 1, PreTrainImages: 16, PreTrainEpochs: 1),
            Arms = new ArmsSpec(Countermeasures: []),
        };
        var report = new AttackJob(spec, CPU, output).Run();

        // Unnamed, the surrogates are the sidecar's default ensemble at the spec's seed.
        Assert.Contains("against its default ensemble (tiny seed 0, tiny-vit seed 0); each surrogate first adversarially fine-tuned for 2 steps at ε 2/255 (hardening)", report.Protection!.Posting);
        var work = Path.Combine(output, "work");
        // The surrogate is the hacker's own release here: hardening worked on a copy, cached apart, and the download stays as it was.
        using var hackers = ClipCheckpoint.Load(Path.Combine(work, "pretrained", "tiny.safetensors"), CPU);
        using var hardened = ClipCheckpoint.Load(Path.Combine(work, "posts-public-models", "tiny-seed0-hardened-v1-2x2-s0.safetensors"), CPU);
        var moved = hackers.parameters().Zip(hardened.parameters()).Max(p => p.First.sub(p.Second).abs().max().item<float>());
        Assert.InRange(moved, 1e-7, 0.05);
        Assert.Contains(report.Arms, a => a.Kind == ArmKinds.Protected);
    }
}
