using System.CommandLine;
using System.Diagnostics;
using Spectre.Console;
using Unlearnable.Clip.Runtime;
using Unlearnable.Data;
using Unlearnable.Data.Formats;
using Unlearnable.Evaluation;
using Unlearnable.Experiments;
using Unlearnable.Protection;
using Unlearnable.Training;

namespace Unlearnable.Cli.Commands;

static class ExperimentCommand
{
    public static Command Create()
    {
        var preset = SharedOptions.Preset();
        var quickGelu = SharedOptions.QuickGelu();
        var data = new Option<string>("--data") { Description = "Data folder with train and test splits (make synthetic data with --size equal to the preset's resolution)", Required = true };
        var output = new Option<string>("--out") { Description = "Folder for report.json, report.md, plots and per-method state", Required = true };
        var methods = new Option<string>("--methods") { Description = "Comma-separated subset of clean,random,em,uap,mem-3,mem-5", DefaultValueFactory = _ => string.Join(',', Table1Settings.AllMethods) };
        var epochs = new Option<int>("--epochs") { Description = "Hacker epochs", DefaultValueFactory = _ => 32 };
        var batch = new Option<int>("--batch-size") { Description = "Hacker and protection batch size", DefaultValueFactory = _ => 128 };
        var protection = new ProtectionOptionSet(ProtectionOptions.FromScratch);
        var device = SharedOptions.Device();
        var countermeasure = new Option<string?>("--countermeasure") { Description = "Robustness: the hacker first applies jpeg:Q, rescale:F, grayscale, blur:SIGMA or platform (1080 px long side + JPEG q85) to every training image" };
        var seed = SharedOptions.Seed();
        var table1 = new Command("table1", "Paper Table 1: protect the training split with each method, train a hacker from scratch, evaluate on clean test data")
        {
            preset, quickGelu, data, output, methods, epochs, batch, countermeasure, device, seed,
            protection.Rounds, protection.SurrogateSteps, protection.PgdSteps, protection.TriggerRounds, protection.TriggerScope, protection.Epsilon,
            protection.StopLoss, protection.RestartSurrogate,
        };
        table1.SetAction((result, cancel) => CommandErrors.Run(() =>
        {
            var dev = Devices.Resolve(result.GetValue(device)!);
            int batchSize = result.GetValue(batch), s = result.GetValue(seed);
            var settings = new Table1Settings(SharedOptions.Architecture(result, preset, quickGelu),
                new TrainingOptions { Epochs = result.GetValue(epochs), BatchSize = batchSize, Seed = s, WarmupSteps = 20 },
                (protection.Read(result, s) with { BatchSize = batchSize }).Resolve(protection.Baseline),
                result.GetValue(methods)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries),
                result.GetValue(countermeasure) is { } c ? Imaging.Countermeasure.Parse(c) : null);
            var dataset = DatasetLoader.Load(result.GetValue(data)!);
            Console.WriteLine(dataset.Summary());
            var clock = Stopwatch.StartNew();
            var experiment = new Table1Experiment(dataset, settings, dev, result.GetValue(output)!)
            {
                Log = line => Console.WriteLine($"[{clock.Elapsed:hh\\:mm\\:ss}] {line}"),
                OnProtection = (method, p) =>
                {
                    if (p.Batch == p.Batches) Console.WriteLine($"[{clock.Elapsed:hh\\:mm\\:ss}] {method}: round {p.Round}/{p.Rounds} {p.Phase} loss {p.Loss:F3}");
                },
            };
            var rows = experiment.Run(cancel);
            var table = new Table().AddColumns("method", "i2t Hit@10", "i2t MedR", "t2i Hit@10", "t2i MedR");
            foreach (var r in rows) table.AddRow(r.Method, $"{r.I2T.Hit10:F1}", $"{r.I2T.MedR:F1}", $"{r.T2I.Hit10:F1}", $"{r.T2I.MedR:F1}");
            AnsiConsole.Write(table);
            Console.WriteLine($"finished in {clock.Elapsed.TotalMinutes:F1} min; report in {result.GetValue(output)}");
            return Task.FromResult(0);
        }));
        return new Command("experiment", "The paper's experiments") { table1, Faces(), ImageOnly() };
    }

    /// <summary>The face-privacy case study (paper §4.5): pre-trained vs fine-tuned on clean vs on MEM-protected photos.</summary>
    static Command Faces()
    {
        var preset = SharedOptions.Preset();
        var quickGelu = SharedOptions.QuickGelu();
        var output = new Option<string>("--out") { Description = "Folder for report.json, report.md, the plots and the work files (rerun to resume)", Required = true };
        var identities = new Option<int>("--identities") { DefaultValueFactory = _ => 40, Description = "Synthetic people (ignored with --identity-folder)" };
        var photos = new Option<int>("--photos") { DefaultValueFactory = _ => 8, Description = "Photos per synthetic person (the last is held out)" };
        var identityFolder = new Option<string?>("--identity-folder") { Description = "Real faces: one sub-folder per person (PNG/JPEG/PGM/WebP)" };
        var preTrained = new Option<string?>("--pretrained") { Description = "Pre-trained checkpoint (default: pre-train --preset on synthetic scenes)" };
        var preImages = new Option<int>("--pretrain-images") { DefaultValueFactory = _ => 1000, Description = "Synthetic scenes for pre-training" };
        var preEpochs = new Option<int>("--pretrain-epochs") { DefaultValueFactory = _ => 20, Description = "Pre-training epochs" };
        var epochs = new Option<int>("--epochs") { DefaultValueFactory = _ => 10, Description = "Fine-tuning epochs (paper: 10)" };
        var lr = new Option<double>("--lr") { DefaultValueFactory = _ => 1e-5, Description = "Fine-tuning learning rate (paper: 1e-5)" };
        var batch = new Option<int>("--batch-size") { DefaultValueFactory = _ => 32, Description = "Fine-tuning and protection batch size" };
        var protection = new ProtectionOptionSet(ProtectionOptions.Evaluation);
        var device = SharedOptions.Device();
        var seed = SharedOptions.Seed();
        var faces = new Command("faces", "Face privacy: can fine-tuning on a person's protected photos teach a model their name?")
        {
            preset, quickGelu, output, identities, photos, identityFolder, preTrained, preImages, preEpochs, epochs, lr, batch, device, seed,
            protection.Rounds, protection.SurrogateSteps, protection.TriggerRounds, protection.TopK,
        };
        faces.SetAction((result, cancel) => CommandErrors.Run(() =>
        {
            var folder = result.GetValue(identityFolder);
            var chosen = protection.Resolve(result, result.GetValue(seed));
            var attack = new AttackSpec
            {
                Name = "face privacy", Preset = result.GetValue(preset)!, QuickGelu = result.GetValue(quickGelu), Seed = result.GetValue(seed),
                Data = folder is null
                    ? new DataSpec(DataKind.SyntheticIdentities, Identities: result.GetValue(identities), Photos: result.GetValue(photos))
                    : new DataSpec(DataKind.Identities, Path.GetFullPath(folder)),
                Protection = new ProtectionSpec(ProtectionSource.Mem, Rounds: chosen.Rounds, SurrogateSteps: chosen.SurrogateSteps,
                    TriggerRounds: chosen.TriggerRounds, TopK: chosen.TopK, BatchSize: result.GetValue(batch)),
                Attack = new HackerSpec(AttackMode.FineTune, result.GetValue(epochs), result.GetValue(lr), result.GetValue(batch),
                    PreTrained: result.GetValue(preTrained) is { } p ? Path.GetFullPath(p) : null,
                    PreTrainImages: result.GetValue(preImages), PreTrainEpochs: result.GetValue(preEpochs)),
            };
            EvaluateAttackCommand.RunWithProgress(attack, result.GetValue(device)!, result.GetValue(output)!, cancel);
            return Task.FromResult(0);
        }));
        return faces;
    }

    /// <summary>Image-only noise (no trigger) on an identity set's training photos, for an attack job's <c>protection.source: folder</c>.</summary>
    static Command ImageOnly()
    {
        var data = new Option<string>("--data") { Description = "Identity folders (one sub-folder per person); the last photo of each is held out, as an attack job holds it out", Required = true };
        var surrogate = new Option<string>("--surrogate") { Description = "The checkpoint the noise is made against: the public model the hacker fine-tunes (an attack job's work/pretrained/PRESET.safetensors)", Required = true };
        var kind = new Option<ImageOnlyKind?>("--kind") { Description = "cloak (each photo's features moved towards the person least like them) or pattern (one random ±ε pattern per person)", Required = true }.OneOf();
        var epsilon = new Option<int>("--epsilon") { Description = "L∞ bound in 1/255 steps", DefaultValueFactory = _ => 8 }.Must(e => e is >= 1 and <= 32, "--epsilon must be 1-32 (1/255 steps)");
        var output = new Option<string>("--out") { Description = "Folder for the protected training split (captions.jsonl and images), as protection.path", Required = true };
        var preset = SharedOptions.Preset(required: false);
        var quickGelu = SharedOptions.QuickGelu();
        var device = SharedOptions.Device();
        var seed = SharedOptions.Seed();
        seed.Description = "The attack job's seed: it draws the captions, and the patterns";
        var command = new Command("image-only", "Protect an identity set's training photos with noise that carries no trigger (cloak or per-person pattern), for protection.source folder")
        {
            data, surrogate, preset, quickGelu, kind, epsilon, output, device, seed,
        };
        command.SetAction((result, cancel) => CommandErrors.Run(() =>
        {
            var dev = Devices.Resolve(result.GetValue(device)!);
            int s = result.GetValue(seed);
            using var model = SharedOptions.LoadCheckpoint(result.GetValue(surrogate)!, result, preset, quickGelu, dev);
            // The job's own training split (ids, captions, held-out photos), so its protection.source folder finds every photo.
            var photos = JobData.Load(new DataSpec(DataKind.Identities, Path.GetFullPath(result.GetValue(data)!)), s, model.Config.Vision.ImageSize, Path.GetTempPath()).Train;
            var folder = result.GetValue(output)!;
            double bound = result.GetValue(epsilon) / 255.0;
            var noisePath = Path.Combine(Path.GetTempPath(), $"unlearnable-image-only-{Guid.NewGuid():N}.bin");
            List<ProtectedImageReport> reports;
            try
            {
                var made = new ImageOnlyNoise(model, bound, dev).Make(photos, result.GetValue(kind)!.Value, s, noisePath);
                using var noise = made.Noise;
                var published = ProtectedDataset.Build(photos, made, bound, seed: s);
                reports = published.Reports;
                CaptionsJsonl.Save(new CaptionDataset("image-only", published.Items), folder);
            }
            finally
            {
                File.Delete(noisePath);
            }
            Console.WriteLine($"{photos.Count} photos of {ImageOnlyNoise.Number(photos).People} people protected ({result.GetValue(kind).ToString()!.ToLowerInvariant()}, max L∞ {reports.Max(r => r.LInfinity)}/255) in {folder}");
            return Task.FromResult(0);
        }));
        return command;
    }
}
