using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using Spectre.Console;
using TorchSharp;
using Unlearnable.Clip.Checkpoints;
using Unlearnable.Clip.Model;
using Unlearnable.Clip.Runtime;
using Unlearnable.Data;
using Unlearnable.Data.Formats;
using Unlearnable.Imaging;
using Unlearnable.Protection;
using Unlearnable.Protection.Robustness;
using Unlearnable.Training;

namespace Unlearnable.Cli.Commands;

/// <summary>
/// Protects the training split of a data set (EM, UAP or MEM) and writes it, with the other
/// splits untouched, as a captions.jsonl folder plus protection.json. Each protected image is the
/// full-resolution original with the noise carried onto it, in the original's format by default
/// (a JPEG keeps its own tables), within ε on the decoded file.
/// </summary>
static class ProtectCommand
{
    public static Command Create()
    {
        var protection = new ProtectionOptionSet(ProtectionOptions.FromScratch, defaultStrength: ProtectionStrength.Medium);
        var data = new Option<string>("--data") { Description = "Data folder to protect", Required = true };
        var output = new Option<string>("--out") { Description = "Folder to write the protected data set to", Required = true };
        var surrogate = new Option<string[]>("--surrogate")
        {
            Description = "Surrogate checkpoint: ours, or OpenAI / open_clip weights as safetensors (architecture from the file, --preset or its shapes). " +
                          "Repeat it to protect against an ensemble (the members' mean loss; one image size). Required for uap; default: a fresh --preset model, as in the from-scratch setting",
            Arity = ArgumentArity.ZeroOrMore,
        }.Must(paths => paths.Length <= Protection.Surrogates.MaxMembers, $"--surrogate may be given at most {Protection.Surrogates.MaxMembers} times (an ensemble's members)");
        var preset = SharedOptions.Preset(required: false);
        var quickGelu = SharedOptions.QuickGelu();
        var vocabulary = new Option<string>("--vocabulary") { Description = "Trigger vocabulary: common-words (default), full, words:PATH (one word per line), or mlm:PATH (a bert-base-uncased style folder: config.json, model.safetensors, vocab.txt; HotFlip restricted to its top-5 words per mask)", DefaultValueFactory = _ => "common-words" };
        var fraction = new Option<double>("--fraction") { Description = "Share of training images to publish protected (0..1)", DefaultValueFactory = _ => 1.0 };
        fraction.Must(f => f is >= 0 and <= 1, "--fraction must be between 0 and 1");
        var format = new Option<OutputFormat?>("--format") { Description = "Protected image format: Jpeg, Png or WebpLossless (default: each original's; a JPEG keeps its own tables)" };
        var jpegQuality = new Option<int?>("--jpeg-quality") { Description = "JPEG answers: quality 1..100 (default: the original's); raised where ε cannot be held" };
        jpegQuality.Must(q => q is null or (>= 1 and <= 100), "--jpeg-quality must be in 1..100");
        var work = new Option<string?>("--work") { Description = "Work folder for noise and resume state (default OUT.work)" };
        var device = SharedOptions.Device();
        var seed = SharedOptions.Seed();
        var command = new Command("protect", "Make a data set's training split unlearnable (EM, UAP or MEM)")
        {
            data, output, surrogate, preset, quickGelu, vocabulary, fraction, format, jpegQuality, work, device, seed,
        };
        foreach (var option in protection.All) command.Options.Add(option);
        command.SetAction((result, cancel) => CommandErrors.Run(() =>
        {
            var options = protection.Resolve(result, result.GetValue(seed));
            SharedOptions.PrepareKernels(options.Precision);
            double share = result.GetValue(fraction);
            var dev = Devices.Resolve(result.GetValue(device)!);
            var surrogatePaths = result.GetValue(surrogate) ?? [];
            if (options.Method == ProtectionMethod.Uap && surrogatePaths.Length == 0)
                throw new ArgumentException("uap attacks a surrogate trained on clean data: pass --surrogate CKPT (see the train command)");
            TorchRuntime.Seed(options.Seed);
            IReadOnlyList<ClipModel> members = surrogatePaths.Length == 0
                ? [new ClipModel(SharedOptions.Architecture(result, preset, quickGelu))]
                : surrogatePaths.Select(path => SharedOptions.LoadCheckpoint(path, result, preset, quickGelu, dev)).ToList();
            foreach (var member in members) member.to(dev);
            try { Protection.Surrogates.Checked(members); }
            catch (ArgumentException e) { throw new ArgumentException($"--surrogate: {e.Message}"); }
            var model = members[0];
            options.Validate(model.Config.Text.ContextLength);
            var words = TriggerVocabularyOption.Parse(result.GetValue(vocabulary)!, dev);

            var dataset = DatasetLoader.Load(result.GetValue(data)!);
            var train = dataset.Of(Split.Train);
            if (train.Count < 2) throw new ArgumentException($"{dataset.Name} has {train.Count} training images; at least 2 are needed");
            var outDir = result.GetValue(output)!;
            var workDir = result.GetValue(work) ?? outDir.TrimEnd('/') + ".work";
            Console.WriteLine($"{dataset.Summary()}\nprotecting {train.Count} training images with {options.Method} on " +
                              $"{string.Join(" + ", members.Select(m => m.Config.Name))} ({dev}); work folder {workDir}");

            var clock = Stopwatch.StartNew();
            ProtectionResult run = null!;
            AnsiConsole.Progress().AutoClear(false)
                .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
                .Start(context =>
                {
                    int batches = ClipTrainer.BatchSizes(train.Count, options.BatchSize).Count;
                    int surrogateSteps = options.SurrogateSteps * members.Count;
                    int total = (options.Method == ProtectionMethod.Uap ? 1 : options.Rounds) * (batches + surrogateSteps);
                    var task = context.AddTask("protecting", maxValue: total);
                    var protector = new DatasetProtector(members, train, new ImageTensors(model.Config.Vision.ImageSize), options, words, dev, workDir)
                    {
                        OnProgress = p =>
                        {
                            task.Value = (p.Round - 1) * (batches + surrogateSteps) + (p.Phase == "surrogate" ? p.Batch : surrogateSteps + p.Batch);
                            task.Description = $"round {p.Round}/{p.Rounds} {p.Phase} {p.Batch}/{p.Batches} loss {p.Loss:F3}";
                        },
                    };
                    run = protector.Run(cancel);
                    task.Value = total;
                });

            var answer = result.GetValue(format) is { } chosen ? new OutputEncoding(chosen, result.GetValue(jpegQuality))
                : result.GetValue(jpegQuality) is { } quality ? new OutputEncoding(OutputFormat.Jpeg, quality) : null;
            var (published, reports) = ProtectedDataset.Build(train, run, options.Epsilon, share, options.Seed, output: answer);
            run.Noise.Dispose();
            var byId = published.ToDictionary(p => p.Id);
            var items = dataset.Items.Select(i => i.Split == Split.Train ? byId[i.Id] : i).ToList();
            CaptionsJsonl.Save(new CaptionDataset(dataset.Name + "-protected", items), outDir);
            WriteReport(Path.Combine(outDir, "protection.json"), options, share, words, run, reports, clock.Elapsed, surrogatePaths);
            foreach (var member in members) member.Dispose();
            var done = reports.Where(r => r.Protected).ToList();
            Console.WriteLine($"protected {done.Count} of {train.Count} training images in {clock.Elapsed.TotalSeconds:F0} s; " +
                              $"max L∞ {done.DefaultIfEmpty().Max(r => r?.LInfinity ?? 0)}/255, mean PSNR {done.Select(r => r.Psnr).DefaultIfEmpty().Average():F1} dB; " +
                              (run.Triggers is null ? "" : $"{EnglishWords.DictionaryShare(done.SelectMany(r => r.TriggerIds)):P0} of trigger words are dictionary words; ") + $"wrote {outDir}");
            return Task.FromResult(0);
        }));
        return command;
    }

    static void WriteReport(string path, ProtectionOptions options, double fraction, TriggerVocabulary words, ProtectionResult run,
        IReadOnlyList<ProtectedImageReport> reports, TimeSpan elapsed, IReadOnlyList<string> surrogates)
    {
        var json = new JsonObject
        {
            ["method"] = options.Method.ToString().ToLowerInvariant(),
            ["surrogates"] = new JsonArray(surrogates.Select(path => (JsonNode?)Path.GetFileName(path)).ToArray()),
            ["settings"] = JsonNode.Parse(JsonSerializer.Serialize(options with { Epsilon = options.Epsilon * 255, StepSize = options.StepSize * 255 })),
            ["units"] = "epsilon, step size and linf in 1/255; psnr in dB",
            ["fraction"] = fraction,
            ["vocabulary"] = words.Name,
            ["dictionary_word_share"] = run.Triggers is null ? null
                : Math.Round(EnglishWords.DictionaryShare(reports.Where(r => r.Protected).SelectMany(r => r.TriggerIds)), 4),
            ["round_losses"] = new JsonArray(run.RoundLosses.Select(l => (JsonNode?)Math.Round(l, 5)).ToArray()),
            ["seconds"] = new JsonObject
            {
                ["total"] = Math.Round(elapsed.TotalSeconds, 1), ["pgd"] = Math.Round(run.PgdTime.TotalSeconds, 1),
                ["trigger_search"] = Math.Round(run.TriggerTime.TotalSeconds, 1), ["surrogate"] = Math.Round(run.SurrogateTime.TotalSeconds, 1),
            },
            ["images"] = new JsonArray(reports.Select(r => (JsonNode?)new JsonObject
            {
                ["id"] = r.Id, ["protected"] = r.Protected, ["linf"] = r.LInfinity, ["format"] = r.Format?.ToString().ToLowerInvariant(),
                ["psnr"] = double.IsFinite(r.Psnr) ? Math.Round(r.Psnr, 2) : null,
                ["triggers"] = new JsonArray(r.Triggers.Select(t => (JsonNode?)t).ToArray()),
            }).ToArray()),
        };
        File.WriteAllText(path, json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    }
}

static class TriggerVocabularyOption
{
    public static TriggerVocabulary Parse(string value, TorchSharp.torch.Device device)
    {
        if (TriggerVocabulary.BuiltIn(value) is { } builtIn) return builtIn;
        if (value.StartsWith("words:", StringComparison.Ordinal))
        {
            var path = value["words:".Length..];
            if (!File.Exists(path)) throw new FileNotFoundException($"word list {path} does not exist", path);
            return TriggerVocabulary.FromWords(Path.GetFileName(path), File.ReadAllLines(path));
        }
        if (value.StartsWith("mlm:", StringComparison.Ordinal))
            return TriggerVocabulary.FromMaskedLm(Protection.NaturalTriggers.MaskedLmProposer.Load(value["mlm:".Length..], device));
        throw new ArgumentException($"--vocabulary must be common-words, full, words:PATH or mlm:PATH, not '{value}'");
    }
}
