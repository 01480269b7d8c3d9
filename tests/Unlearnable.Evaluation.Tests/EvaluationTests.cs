using Unlearnable.Data;
using Unlearnable.Data.Synthetic;
using Unlearnable.Evaluation;
using Unlearnable.Protection;
using Unlearnable.Training;
using static TorchSharp.torch;

namespace Unlearnable.Evaluation.Tests;

public class EvaluationTests
{
    static string Temp() => TestFolders.New();

    [Fact]
    public void TheFullExampleSpecsAreValid()
    {
        foreach (var name in new[] { "face-study.json", "face-study-ci.json", "scenes-from-scratch.json" })
            Assert.Empty(SpecValidator.Check(AttackSpec.Load(RepoFiles.Get("examples/attacks/" + name))));
        // The real-face specs name a data folder that stays out of the repository: everything else in them is valid.
        foreach (var name in new[] { "real-faces-sidecar.json", "real-faces-posts.json", "real-faces-mem.json" })
            Assert.Equal(["data.path"], SpecValidator.Check(AttackSpec.Load(RepoFiles.Get("examples/attacks/" + name))).Select(v => v.Field));
        // So does the LFW study, and the public model's faces beside it.
        // So do the LFW study and the transfer studies, and the public model's faces beside them; the transfer studies' releases
        // are ones no member was made from, or the validator would name them too.
        foreach (var name in new[] { "lfw-dev.json", "lfw-dev-transfer.json", "lfw-dev-transfer-vit.json", "orl-transfer.json" })
            Assert.Equal(["data.path", "attack.preTrainFaces"], SpecValidator.Check(AttackSpec.Load(RepoFiles.Get("examples/attacks/" + name))).Select(v => v.Field));
    }

    [Fact]
    public void BadSpecsNameEveryFieldAtFaultBeforeAnyTraining()
    {
        var empty = Temp();
        Directory.CreateDirectory(Path.Combine(empty, "alice"));
        var spec = new AttackSpec
        {
            Preset = "rn49",
            Data = new DataSpec(DataKind.Identities, empty),
            Arms = new ArmsSpec(Architectures: ["tiny-vit", "vit-h"], Fractions: [0.5, 1.5], Countermeasures: ["jpeg:500"]),
        };
        var fields = SpecValidator.Check(spec).Select(v => v.Field).ToList();
        Assert.Equal(["preset", "arms.architectures[1]", "data.path", "arms.fractions[1]", "arms.countermeasures[0]"], fields);
        Assert.Contains("no images", SpecValidator.Check(spec).Single(v => v.Field == "data.path").Problem);

        // Names a spec does not know are refused while it is read, with the field and the names it knows.
        foreach (var (json, field, known) in new[]
        {
            (""" { "attack": { "mode": "distill" } } """, "attack.mode", "fine-tune, from-scratch"),
            (""" { "protection": { "robustTo": "everything" } } """, "protection.robustTo", "none, platform"),
            (""" { "protection": { "precision": "half" } } """, "protection.precision", "float32, bfloat16"),
            (""" { "protection": { "source": "sidecar", "strength": "max" } } """, "protection.strength", "low, medium, high"),
            (""" { "protection": { "source": "magic" } } """, "protection.source", "none, mem, em, folder, sidecar, posts"),
            (""" { "data": { "kind": 3 } } """, "data.kind", "synthetic-identities, identities, captions, synthetic-scenes"),
        })
        {
            var refused = Assert.Single(Assert.Throws<SpecException>(() => AttackSpec.Parse(json)).Violations);
            Assert.Equal(field, refused.Field);
            Assert.Contains("use " + known, refused.Problem);
        }
        var named = AttackSpec.Parse(""" { "data": { "kind": "synthetic-scenes" }, "protection": { "source": "Posts", "strength": "high", "robustTo": "platform" }, "attack": { "mode": "from-scratch" } } """);
        Assert.Equal((DataKind.SyntheticScenes, ProtectionSource.Posts, Protection.ProtectionStrength.High, Protection.Robustness.TransformSet.Platform, AttackMode.FromScratch),
            (named.Data.Kind, named.Protection.Source, named.Protection.Strength, named.Protection.RobustTo, named.Attack.Mode));
        Assert.Contains("\"mode\": \"from-scratch\"", named.ToJson());
        Assert.Contains("\"source\": \"posts\"", named.ToJson());
        Assert.Equal("protection.userShare", Assert.Single(SpecValidator.Check(new AttackSpec { Protection = new ProtectionSpec(ProtectionSource.Posts, UserShare: 1.5) })).Field);
        Assert.Equal("arms.countermeasures[1]", Assert.Single(SpecValidator.Check(new AttackSpec { Arms = new ArmsSpec(Countermeasures: ["platform", "platform:2"]) })).Field);
        Assert.Equal("protection.userShare", Assert.Single(SpecValidator.Check(new AttackSpec { Protection = new ProtectionSpec(UserShare: -0.5) })).Field);
        Assert.Equal("protection.userShare", Assert.Single(SpecValidator.Check(new AttackSpec { Protection = new ProtectionSpec(ProtectionSource.Sidecar, SidecarAddress: "http://127.0.0.1:1", UserShare: 0.5) })).Field);
        Assert.Equal("protection.triggerLength", Assert.Single(SpecValidator.Check(new AttackSpec { Protection = new ProtectionSpec(ProtectionSource.Posts, TriggerLength: 40) })).Field);
        Assert.Equal("protection.precision", Assert.Single(SpecValidator.Check(new AttackSpec { Protection = new ProtectionSpec(ProtectionSource.Sidecar, SidecarAddress: "http://127.0.0.1:1", Precision: Clip.Model.MatmulPrecision.Bfloat16) })).Field);
        var rounded = AttackSpec.Parse(""" { "protection": { "source": "posts", "precision": "bfloat16" } } """);
        Assert.Equal(Clip.Model.MatmulPrecision.Bfloat16, ProtectionStage.PostOptions(rounded).Options.Precision);
        Assert.Equal(Clip.Model.MatmulPrecision.Bfloat16, ProtectionStage.Options(rounded with { Protection = rounded.Protection with { Source = ProtectionSource.Mem } }).Precision);
        Assert.Contains("\"precision\": \"bfloat16\"", rounded.ToJson());
        // A spec written before userShare existed reads and writes back the same, so its job folder still resumes.
        var old = new AttackSpec { Protection = new ProtectionSpec(ProtectionSource.Mem) };
        Assert.DoesNotContain("userShare", old.ToJson(), StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("precision", old.ToJson(), StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("Precision", System.Text.Json.JsonSerializer.Serialize(ProtectionStage.Options(old)));
        Assert.DoesNotContain("UserBound", System.Text.Json.JsonSerializer.Serialize(ProtectionStage.Options(old)));
        // The same for restartSurrogate, whose unset value is the new default (on); false is the authors' loop.
        Assert.DoesNotContain("restartSurrogate", old.ToJson(), StringComparison.OrdinalIgnoreCase);
        Assert.True(ProtectionStage.Options(old).RestartSurrogate);
        Assert.False(ProtectionStage.Options(AttackSpec.Parse(""" { "protection": { "restartSurrogate": false } } """)).RestartSurrogate);
        // The posts path trains the public model the pre-training fields describe even when the hacker starts from scratch.
        var scratchPosts = SpecValidator.Check(new AttackSpec
        {
            Protection = new ProtectionSpec(ProtectionSource.Posts), Attack = new HackerSpec(AttackMode.FromScratch, PreTrainImages: 0, PreTrainEpochs: 0),
        });
        Assert.Equal(["attack.preTrainEpochs", "attack.preTrainImages"], scratchPosts.Select(v => v.Field).Order());
        Assert.Empty(SpecValidator.Check(new AttackSpec { Attack = new HackerSpec(AttackMode.FromScratch, PreTrainImages: 0, PreTrainEpochs: 0) }));
        var (postOptions, postRounds) = ProtectionStage.PostOptions(new AttackSpec { Protection = new ProtectionSpec(ProtectionSource.Posts, Strength: Protection.ProtectionStrength.High, UserShare: 0.5) });
        Assert.Equal((12.0 / 255, 3, 6.0 / 255), (postOptions.Epsilon, postRounds, postOptions.UserBound));
        Assert.Equal(Protection.Robustness.TransformSet.Platform, ProtectionStage.Options(new AttackSpec { Protection = new ProtectionSpec(RobustTo: Protection.Robustness.TransformSet.Platform) }).RobustTo);

        var missing = SpecValidator.Check(new AttackSpec { Data = new DataSpec(DataKind.Identities, "/nonexistent/faces") });
        Assert.Equal("folder /nonexistent/faces does not exist", Assert.Single(missing).Problem);

        var typo = Assert.Throws<SpecException>(() => AttackSpec.Parse("""{ "attack": { "epochz": 3 } }"""));
        Assert.Contains("epochz", typo.Message);
    }

    [Fact]
    public void AJobWithinEachFieldsBoundButTooLargeAsAWholeIsRefused()
    {
        // Each field alone is allowed; together: 10 million images, 1,000 epochs over them, 110 arms.
        var people = new AttackSpec { Data = new DataSpec(DataKind.SyntheticIdentities, Identities: 10_000, Photos: 1_000) };
        Assert.Equal(["data", "attack.epochs"], SpecValidator.Check(people).Select(v => v.Field));
        Assert.Contains("10,000,000 images to generate", SpecValidator.Check(people)[0].Problem);
        var epochs = new AttackSpec { Data = new DataSpec(DataKind.SyntheticScenes, Images: 150_000, TestImages: 10_000), Attack = new HackerSpec(Epochs: 200) };
        Assert.Contains("the limit is 50,000,000 for one job", Assert.Single(SpecValidator.Check(epochs), v => v.Field == "attack.epochs").Problem);
        var wide = new AttackSpec
        {
            Arms = new ArmsSpec(Architectures: ["tiny-vit", "small", "small-vit"], Countermeasures: [.. Enumerable.Range(1, 16).Select(q => $"jpeg:{q * 5}")], Releases: [1, 2, 3, 4, 5]),
        };
        Assert.Contains("arms", SpecValidator.Check(wide).Select(v => v.Field));
        var preTraining = new AttackSpec { Attack = new HackerSpec(PreTrainImages: 200_000, PreTrainEpochs: 100), Arms = new ArmsSpec(Releases: [1, 2]) };
        Assert.Contains("3 public models", Assert.Single(SpecValidator.Check(preTraining)).Problem);
        Assert.Empty(SpecValidator.Check(new AttackSpec { Data = new DataSpec(DataKind.SyntheticIdentities, Identities: 1_000, Photos: 100), Arms = new ArmsSpec(Releases: [1, 2]) }));
    }

    [Fact]
    public void ACancelledJobResumesAfterItsLastScoredEpochWithoutRetraining()
    {
        var output = Temp();
        var spec = new AttackSpec
        {
            Name = "resume", Seed = 3,
            Data = new DataSpec(DataKind.SyntheticScenes, Images: 40, TestImages: 10),
            Protection = new ProtectionSpec(ProtectionSource.None),
            Attack = new HackerSpec(AttackMode.FromScratch, Epochs: 3, LearningRate: 1e-3, BatchSize: 10, WarmupSteps: 2),
        };
        using var cancel = new CancellationTokenSource();
        var first = new List<JobProgress>();
        Assert.ThrowsAny<OperationCanceledException>(() => new AttackJob(spec, CPU, output)
        {
            OnProgress = p => { first.Add(p); if (p.Phase == "evaluate" && p.Epoch == 2 && p.Loss is not null && p.Message.Contains("Hit@10")) cancel.Cancel(); },
        }.Run(cancel.Token));

        var second = new List<JobProgress>();
        var report = new AttackJob(spec, CPU, output) { OnProgress = second.Add }.Run();

        Assert.DoesNotContain(second, p => p.Phase == "train" && p.Epoch is > 0 and <= 2);
        Assert.Contains(second, p => p.Phase == "train" && p.Epoch == 3);
        var clean = Assert.Single(report.Arms);
        Assert.Equal([0, 1, 2, 3], clean.Epochs.Select(e => e.Epoch));
        var scoredBefore = first.Last(p => p.Phase == "evaluate" && p.Epoch == 2 && p.Message.Contains("Hit@10"));
        Assert.Equal(scoredBefore.Loss, clean.Epochs[2].Loss);
        Assert.True(clean.Epochs[3].Loss < clean.Epochs[1].Loss);

        var other = spec with { Seed = 4 };
        var refused = Assert.Throws<SpecException>(() => new AttackJob(other, CPU, output).Run());
        Assert.Contains("different spec", refused.Message);
    }

    [Theory]
    [InlineData(ProtectionSource.Mem, 3, true)]      // releases before five-word posts wrote every length out; mem's unset is still 3
    [InlineData(ProtectionSource.Posts, 3, false)]   // posts' unset is 8 words now
    [InlineData(ProtectionSource.Posts, null, false)] // saved unset by the five-word releases, when unset meant 5
    [InlineData(ProtectionSource.Posts, StrengthLevel.DefaultTriggerLength, true)]   // saved by this release: written out
    public void AFolderResumesOnlyWhereItsSavedTriggerLengthStillMeansWhatTheSpecAsks(ProtectionSource source, int? saved, bool resumes)
    {
        var output = Temp();
        var spec = new AttackSpec
        {
            Name = "old folder", Data = new DataSpec(DataKind.SyntheticScenes, Images: 40, TestImages: 10),
            Protection = new ProtectionSpec(source), Attack = new HackerSpec(AttackMode.FromScratch, Epochs: 1, BatchSize: 10),
        };
        Assert.Null(spec.Protection.TriggerLength);
        Directory.CreateDirectory(output);
        File.WriteAllText(Path.Combine(output, "spec.json"), (spec with { Protection = spec.Protection with { TriggerLength = saved } }).ToJson());
        using var cancelled = new CancellationTokenSource();
        cancelled.Cancel();
        var run = () => new AttackJob(spec, CPU, output).Run(cancelled.Token);
        if (!resumes)
        {
            Assert.Contains("different spec", Assert.Throws<SpecException>(run).Message);
            return;
        }
        Assert.ThrowsAny<OperationCanceledException>(run);
        // Saved again with the length written out, so the next change of the default cannot resume it unnoticed.
        Assert.Matches($"\"triggerLength\":\\s*{spec.Protection.TriggerLengthOrDefault}\\b", File.ReadAllText(Path.Combine(output, "spec.json")));
    }

    [Fact]
    public void AHackerFineTunesFromConfigLessWeightsAsFromOurOwnCheckpoint()
    {
        // The same pre-trained weights as our checkpoint and as an OpenAI-style state dict (no config):
        // the job builds the same model from both, so the untrained epoch 0 scores the same.
        var folder = Temp();
        Directory.CreateDirectory(folder);
        Clip.Runtime.TorchRuntime.Seed(9);
        using var source = new Clip.Model.ClipModel(Clip.Model.ClipPresets.Get("tiny"));
        var ours = Path.Combine(folder, "ours.safetensors");
        Clip.Checkpoints.ClipCheckpoint.Save(source, ours);
        var bare = Path.Combine(folder, "openai-style.safetensors");
        Clip.Checkpoints.SafeTensors.Write(bare, source.state_dict().Select(kv => (kv.Key, kv.Value)));

        AttackReport Run(string preTrained) => new AttackJob(new AttackSpec
        {
            Name = "pretrained", Seed = 2,
            Data = new DataSpec(DataKind.SyntheticScenes, Images: 20, TestImages: 10),
            Protection = new ProtectionSpec(ProtectionSource.None),
            Attack = new HackerSpec(AttackMode.FineTune, Epochs: 1, LearningRate: 1e-4, BatchSize: 10, WarmupSteps: 1, PreTrained: preTrained),
        }, CPU, Path.Combine(folder, Path.GetFileNameWithoutExtension(preTrained))).Run();

        var fromOurs = Run(ours).Arms;
        var fromBare = Run(bare).Arms;
        Assert.Equal(fromOurs.Select(a => a.Name), fromBare.Select(a => a.Name));
        Assert.All(fromOurs.Zip(fromBare), pair => Assert.Equal((pair.First.Epochs[0].I2T, pair.First.Epochs[0].T2I), (pair.Second.Epochs[0].I2T, pair.Second.Epochs[0].T2I)));
    }

    [Fact]
    public void APoisonFractionProtectsThatShareOfPairsAndTheSameOnesEveryTime()
    {
        var clean = SyntheticScenes.Generate(20, seed: 1, testImages: 0, size: 32).Items;
        var marked = clean.Select(c => c with { Captions = ["protected " + c.Captions[0]] }).ToList();
        var half = PoisonMix.Mix(clean, marked, 0.5, seed: 7);
        Assert.Equal(10, half.Count(i => i.Captions[0].StartsWith("protected", StringComparison.Ordinal)));
        Assert.Equal(half.Select(i => i.Captions[0]), PoisonMix.Mix(clean, marked, 0.5, seed: 7).Select(i => i.Captions[0]));
        Assert.Equal(clean.Select(i => i.Id), half.Select(i => i.Id));
        Assert.All(PoisonMix.Mix(clean, marked, 1, seed: 7), i => Assert.StartsWith("protected", i.Captions[0]));
        Assert.Throws<ArgumentOutOfRangeException>(() => PoisonMix.Mix(clean, marked, 1.2, seed: 7));
    }

    [Fact]
    public void TsneKeepsWellSeparatedClustersApart()
    {
        var rng = new Random(2);
        var points = Enumerable.Range(0, 60).Select(i => Enumerable.Range(0, 16).Select(d => (d == i % 3 ? 5.0 : 0.0) + 0.1 * rng.NextDouble()).ToArray()).ToArray();
        var embedded = Tsne.Embed(points, seed: 1);
        double Distance(int a, int b) => Math.Sqrt(Math.Pow(embedded[a].X - embedded[b].X, 2) + Math.Pow(embedded[a].Y - embedded[b].Y, 2));
        var within = new List<double>();
        var between = new List<double>();
        for (int a = 0; a < 60; a++)
            for (int b = a + 1; b < 60; b++) (a % 3 == b % 3 ? within : between).Add(Distance(a, b));
        Assert.True(within.Max() < between.Min(), $"largest within-cluster distance {within.Max():F2}, smallest between {between.Min():F2}");
    }

    [Fact]
    public void ProtectionKeptIsTheShareOfTheCleanHackersGainTakenAway()
    {
        static ArmResult Arm(string name, string kind, double hit10, string architecture = "tiny", IReadOnlyList<EpochScores>? epochs = null) =>
            new(name, kind, architecture, kind == ArmKinds.Protected ? 1 : 0, name.Contains('+') ? name.Split(" + ")[1] : null, epochs ?? [],
                new RetrievalScores(0, 0, hit10, 10), new RetrievalScores(0, 0, 0, 10), 0);
        var report = new AttackReport("r", new AttackSpec(), "d", 100, 100, new RetrievalScores(0, 0, 20, 10), new RetrievalScores(0, 0, 20, 10), null,
        [
            Arm("pre-trained", ArmKinds.PreTrained, 20), Arm("clean", ArmKinds.Clean, 60), Arm("protected", ArmKinds.Protected, 30),
            Arm("protected + jpeg:50", ArmKinds.Protected, 50),
            Arm("pre-trained [tiny-vit]", ArmKinds.PreTrained, 10, "tiny-vit"), Arm("clean [tiny-vit]", ArmKinds.Clean, 50, "tiny-vit"),
            Arm("protected [tiny-vit]", ArmKinds.Protected, 20, "tiny-vit"),
        ], 1);
        Assert.Equal(75, report.ProtectionKept(report.Arms[2])!.Value, 6);    // (60 − 30) / (60 − 20)
        Assert.Equal(25, report.ProtectionKept(report.Arms[3])!.Value, 6);
        Assert.Equal(0, report.ProtectionKept(report.Arms[1])!.Value, 6);
        Assert.Equal(75, report.ProtectionKept(report.Arms[6])!.Value, 6);    // against the ViT's own clean and pre-trained arms
        // From scratch there is no pre-trained arm: the start is the clean arm before its first epoch.
        var scores = (double hit10) => new RetrievalScores(0, 0, hit10, 10);
        var scratch = new AttackReport("r", new AttackSpec(), "d", 100, 100, scores(20), scores(20), null,
            [Arm("clean", ArmKinds.Clean, 60, epochs: [new EpochScores(0, double.NaN, scores(10), scores(10))]), Arm("protected", ArmKinds.Protected, 20)], 1);
        Assert.Equal(80, scratch.ProtectionKept(scratch.Arms[1])!.Value, 6);
        // A clean hacker that gained less than one held-out photo's worth (1 point of 100 photos) leaves nothing to keep.
        var flat = scratch with { Arms = [Arm("clean", ArmKinds.Clean, 10.5, epochs: [new EpochScores(0, double.NaN, scores(10), scores(10))]), Arm("protected", ArmKinds.Protected, 2)] };
        Assert.Null(flat.ProtectionKept(flat.Arms[1]));
        Assert.Null(flat.Verdict!.WorstImageToText.Kept);
    }
}
