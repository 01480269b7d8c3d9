using System.CommandLine;
using Unlearnable.Evaluation;

namespace Unlearnable.Cli.Commands;

/// <summary>
/// The product's story on the embedded default, needing no files or server: people post photos
/// of themselves with their names (synthetic faces); the posts are protected through the
/// sidecar's batch path (its default surrogates: the public model's ResNet and ViT, each hardened; micro-batches, medium strength); a hacker fine-tunes that public pre-trained CLIP on the clean posts and, separately, on
/// the protected ones, and tries to put names to new photos. It prints both beside the random and
/// pre-trained baselines and writes the report with its charts and example images.
/// </summary>
static class DemoCommand
{
    public static Command Create()
    {
        var preset = SharedOptions.Preset(required: false);
        var quickGelu = SharedOptions.QuickGelu();
        var people = new Option<int>("--people") { Description = "People who post", DefaultValueFactory = _ => 40 };
        var photos = new Option<int>("--photos") { Description = "Photos per person (the last is held out for the hacker's test)", DefaultValueFactory = _ => 8 };
        var epochs = new Option<int>("--epochs") { Description = "The hacker's fine-tuning epochs", DefaultValueFactory = _ => 10 };
        var preTrain = new Option<int>("--pretrain-images") { Description = "Captioned scenes the hacker's model was pre-trained on", DefaultValueFactory = _ => 1000 };
        var hardening = new Option<int>("--hardening-steps")
        {
            Description = "Adversarial fine-tuning steps each surrogate gets before protecting, as the sidecar's Sidecar:Model:Hardening:Steps (0: none)",
            DefaultValueFactory = _ => Protection.Robustness.AdversarialHardening.DefaultSteps,
        };
        people.Must(n => n >= 2, "--people must be at least 2");
        photos.Must(n => n >= 2, "--photos must be at least 2 (one is held out)");
        epochs.Must(n => n >= 1, "--epochs must be at least 1");
        preTrain.Must(n => n >= 2, "--pretrain-images must be at least 2");
        hardening.Must(steps => Protection.Robustness.AdversarialHardening.IsStepsSetting(steps), $"--hardening-steps must be {Protection.Robustness.AdversarialHardening.StepsSettingRange}");
        var output = new Option<string>("--out") { Description = "Folder for the report, charts and example images (rerun to resume)", DefaultValueFactory = _ => Path.Combine("runs", "demo") };
        var device = SharedOptions.Device();
        var seed = SharedOptions.Seed();
        var command = new Command("demo", "Protect people's posts as the sidecar does, let a hacker fine-tune on them, and show what it learned against clean posts")
            { preset, quickGelu, people, photos, epochs, preTrain, hardening, output, device, seed };
        command.SetAction((result, cancel) => CommandErrors.Run(() =>
        {
            var spec = Spec(result.GetValue(preset)!, result.GetValue(people), result.GetValue(photos), result.GetValue(epochs), result.GetValue(preTrain), result.GetValue(seed),
                result.GetValue(hardening)) with { QuickGelu = result.GetValue(quickGelu) };
            string outDir = result.GetValue(output)!;
            Console.WriteLine($"{spec.Data.Identities} people post {spec.Data.Photos - 1} photos each with captions naming them; a hacker collects the posts and fine-tunes CLIP to put names to faces.");
            var report = EvaluateAttackCommand.RunWithProgress(spec, result.GetValue(device)!, outDir, cancel);
            Console.WriteLine(Story(report));
            Console.WriteLine($"charts: {Path.Combine(outDir, "i2t-hit10.png")}, examples: {Path.Combine(outDir, "examples.png")}, full report: {Path.Combine(outDir, "report.md")}");
            return Task.FromResult(0);
        }));
        return command;
    }

    public static AttackSpec Spec(string preset, int people, int photos, int epochs, int preTrainImages, int seed,
        int hardeningSteps = Protection.Robustness.AdversarialHardening.DefaultSteps) => new()
    {
        Name = "demo: people's posts protected through the sidecar's batch path, against a hacker who fine-tunes on them",
        Seed = seed, Preset = preset,
        Data = new DataSpec(DataKind.SyntheticIdentities, Identities: people, Photos: photos),
        Protection = new ProtectionSpec(ProtectionSource.Posts, Strength: Protection.ProtectionStrength.Medium,
            Hardening: hardeningSteps == Protection.Robustness.AdversarialHardening.DefaultSteps ? null : new HardeningSpec(Steps: hardeningSteps)),
        Attack = new HackerSpec(AttackMode.FineTune, Epochs: epochs, LearningRate: 1e-4, BatchSize: 32, PreTrainImages: preTrainImages, PreTrainEpochs: 20),
        // What every platform does to a photo before anyone can crawl it: downscale and re-encode as JPEG.
        Arms = new ArmsSpec(Countermeasures: ["platform"]),
    };

    /// <summary>One sentence on what the protection held: how much of what clean posts teach the hacker, protected posts did not.</summary>
    static string Story(AttackReport report)
    {
        var arm = (string name) => report.Arms.First(a => a.Name == name);
        var (clean, prot) = (arm(ArmKinds.Clean), arm(ArmKinds.Protected));
        double baseline = report.Arms.FirstOrDefault(a => a.Name == ArmKinds.PreTrained)?.I2T.Hit10 ?? report.RandomI2T.Hit10;
        string Kept(ArmResult a) => clean.I2T.Hit10 > baseline && report.ProtectionKept(a) is { } kept
            ? FormattableString.Invariant($"{Math.Clamp(kept, 0, 100):F0} %") : "n/a (clean posts taught it nothing)";
        var washed = report.Arms.FirstOrDefault(a => a.Countermeasure == "platform");
        return FormattableString.Invariant(
            $"Names right within the top 10 for a new photo: {clean.I2T.Hit10:F1} % after clean posts, {prot.I2T.Hit10:F1} % after protected ones (pre-trained {baseline:F1} %, random {report.RandomI2T.Hit10:F1} %): the protection kept {Kept(prot)} of what the posts would have taught") +
            (washed is null ? "." : FormattableString.Invariant($", and {Kept(washed)} after the platform's downscale and JPEG re-encode ({washed.I2T.Hit10:F1} %)."));
    }
}
