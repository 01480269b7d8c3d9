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
        Assert.Equal("protection.members", Assert.Single(SpecValidator.Check(new AttackSpec { Protection = new ProtectionSpec(ProtectionSource.Mem, Members: [new("tiny", 0)]) })).Field);
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
            Protection = new ProtectionSpec(ProtectionSource.Posts, TriggerLength: 2, Members: [new("tiny", 0), new("tiny-vit", 1)]),
            Attack = new HackerSpec(AttackMode.FineTune, Epochs: 1, LearningRate: 1e-4, BatchSize: 8, WarmupSteps: 1, PreTrainImages: 16, PreTrainEpochs: 1, PreTrainSeed: 7),
        };
        var report = new AttackJob(spec, CPU, output).Run();

        Assert.Contains("an ensemble of 2 public-model releases (tiny seed 0, tiny-vit seed 1)", report.Protection!.Posting);
        var work = Path.Combine(output, "work");
        using var hackers = ClipCheckpoint.Load(Path.Combine(work, "pretrained", "tiny.safetensors"), CPU);
        using var member = ClipCheckpoint.Load(Path.Combine(work, "posts-public-model", "model.safetensors"), CPU);
        Assert.True(File.Exists(Path.Combine(work, "posts-public-models", "tiny-vit-seed1", "model.safetensors")));
        Assert.False(hackers.TokenEmbeddingMatrix.eq(member.TokenEmbeddingMatrix).all().item<bool>(), "the hacker's release (seed 7) is the protection's (seed 0)");
        Assert.Contains(report.Arms, a => a.Kind == ArmKinds.Protected);
    }
}
