using TorchSharp;
using System.CommandLine;
using System.Diagnostics;
using Unlearnable.Clip.Model;
using Unlearnable.Clip.Runtime;
using Unlearnable.Clip.Text;
using static TorchSharp.torch;

namespace Unlearnable.Cli.Commands;

/// <summary>Measurement commands that print numbers (speed targets live here, not in tests).</summary>
static class BenchCommand
{
    public static Command Create()
    {
        var preset = SharedOptions.Preset();
        var quickGelu = SharedOptions.QuickGelu();
        var batch = new Option<int>("--batch") { Description = "Batch size", DefaultValueFactory = _ => 8 };
        var steps = new Option<int>("--steps") { Description = "Timed steps (after one warm-up step)", DefaultValueFactory = _ => 5 };
        var device = SharedOptions.Device();
        var trainStep = new Command("train-step", "Time CLIP forward+backward (contrastive loss) and a full AdamW training step on random pixels and captions")
            { preset, quickGelu, batch, steps, device };
        trainStep.SetAction(result => CommandErrors.Run(() =>
        {
            var config = SharedOptions.Architecture(result, preset, quickGelu);
            var dev = Devices.Resolve(result.GetValue(device)!);
            int b = result.GetValue(batch), n = result.GetValue(steps);
            if (b < 2 || n < 1) throw new ArgumentException("--batch must be ≥ 2 and --steps ≥ 1");
            TorchRuntime.Seed(0);
            var model = new ClipModel(config);
            model.to(dev).train();
            var pixels = randn(b, 3, config.Vision.ImageSize, config.Vision.ImageSize, device: dev);
            var ids = tensor(ClipTokenizer.Default.EncodeBatch(Enumerable.Range(0, b).Select(i => $"a photo of object number {i}").ToList(),
                config.Text.ContextLength).Select(x => (long)x).ToArray(), [b, config.Text.ContextLength]).to(dev);
            var optimizer = optim.AdamW(model.parameters(), 5e-4, weight_decay: 0.2);
            var times = new List<double>();
            var stepTimes = new List<double>();
            for (int i = 0; i <= n; i++)
            {
                optimizer.zero_grad();
                var clock = Stopwatch.StartNew();
                using (NewDisposeScope())
                    ContrastiveLoss.Compute(model.Logits(model.EncodeImage(pixels), model.EncodeText(ids))).backward();
                if (dev.type == DeviceType.CUDA) cuda.synchronize();
                var forwardBackward = clock.Elapsed.TotalMilliseconds;
                optimizer.step();
                if (dev.type == DeviceType.CUDA) cuda.synchronize();
                if (i == 0) continue; // warm-up
                times.Add(forwardBackward);
                stepTimes.Add(clock.Elapsed.TotalMilliseconds);
            }
            times.Sort();
            stepTimes.Sort();
            long parameters = model.parameters().Sum(p => p.numel());
            Console.WriteLine($"{config.Name}: {parameters / 1e6:F1} M parameters, batch {b}, {config.Vision.ImageSize}px, device {dev}, threads {get_num_threads()}");
            Console.WriteLine($"forward+backward: median {times[times.Count / 2]:F0} ms, min {times[0]:F0} ms, max {times[^1]:F0} ms over {n} steps");
            Console.WriteLine($"training step (forward+backward+AdamW): median {stepTimes[stepTimes.Count / 2]:F0} ms");
            return 0;
        }));
        return new Command("bench", "Benchmarks that print timings") { trainStep, MemCommand(), BenchPublishCommand.Create() };
    }

    static Command MemCommand()
    {
        var preset = SharedOptions.Preset();
        var quickGelu = SharedOptions.QuickGelu();
        var batch = new Option<int>("--batch") { Description = "Posts per micro-batch", DefaultValueFactory = _ => 16 };
        var batches = new Option<int>("--batches") { Description = "Timed batches (after one warm-up batch)", DefaultValueFactory = _ => 3 };
        var triggerLength = new Option<int?>("--trigger-length")
        {
            Description = $"Trigger tokens (0: EM, no trigger); default: the sidecar's {Protection.StrengthLevel.DefaultTriggerLength} with --strength, the authors' {Protection.ProtectionOptions.DefaultTriggerLength} without",
        };
        var surrogateSteps = new Option<int>("--surrogate-steps") { DefaultValueFactory = _ => 0, Description = "Scratch surrogate steps per batch" };
        var vocabulary = new Option<string>("--vocabulary")
        {
            Description = "Trigger vocabulary: full (default), common-words, or mlm:PATH (natural triggers: a masked LM's proposals, never cached across batches, so every batch pays for them as new captions do)",
            DefaultValueFactory = _ => "full",
        };
        var strength = new Option<Protection.ProtectionStrength?>("--strength")
        {
            Description = "Protect as the sidecar does at this level (its ε, rounds, PGD steps and publishing transforms); default: the authors' step (1 round, 8 PGD steps, no transforms)",
        };
        var checkpoint = new Option<FileInfo?>("--checkpoint")
        {
            Description = "Time these weights (e.g. the surrogate a sidecar serves) instead of a freshly initialised --preset; trained weights can compute at another speed",
        };
        checkpoint.Must(f => f is null || f.Exists, "--checkpoint names no file");
        var members = new Option<int>("--members")
        {
            Description = "Surrogates protected against at once (an ensemble): the first is --checkpoint or --preset, the others fresh releases of the same architecture (seeds 1, 2, …)",
            DefaultValueFactory = _ => 1,
        }.Must(k => k is >= 1 and <= Protection.Surrogates.MaxMembers, $"--members must be 1 to {Protection.Surrogates.MaxMembers}");
        var also = new Option<string[]>("--also")
        {
            Description = "Another architecture protected against at the same time, fresh weights (repeat it): an ensemble across architectures, " +
                "e.g. --preset tiny --also tiny-vit; every member must read one image size and text context",
        };
        also.AcceptOnlyFromAmong([.. ClipPresets.Names]);
        var precision = SharedOptions.Precision();
        var device = SharedOptions.Device();
        // The transfer levers, declared once with the protect command's.
        var levers = new ProtectionOptionSet(Protection.ProtectionOptions.FromScratch);
        var mem = new Command("mem", "Protected posts per second for batch-level MEM, with the time split (PGD, trigger search, surrogate steps)")
            { preset, quickGelu, batch, batches, triggerLength, surrogateSteps, vocabulary, strength, checkpoint, members, also, precision, levers.InputDiversity, levers.SkipErosion, levers.EnsembleStep, device };
        mem.SetAction(result => CommandErrors.Run(() =>
        {
            var products = result.GetValue(precision) ?? MatmulPrecision.Float32;
            SharedOptions.PrepareKernels(products);
            var dev = Devices.Resolve(result.GetValue(device)!);
            int b = result.GetValue(batch), n = result.GetValue(batches);
            if (b < 2 || n < 1) throw new ArgumentException("--batch must be ≥ 2 and --batches ≥ 1");
            TorchRuntime.Seed(0);
            var model = result.GetValue(checkpoint) is { } weights
                ? SharedOptions.LoadCheckpoint(weights.FullName, result, preset, quickGelu, dev)
                : new ClipModel(SharedOptions.Architecture(result, preset, quickGelu));
            model.to(dev);
            var config = model.Config;
            var ensemble = new List<ClipModel> { model };
            for (int seed = 1; seed < result.GetValue(members); seed++)
            {
                TorchRuntime.Seed(seed);
                ensemble.Add(new ClipModel(config).to(dev));
            }
            var others = result.GetValue(also) ?? [];
            if (ensemble.Count + others.Length > Protection.Surrogates.MaxMembers)
                throw new ArgumentException($"--members {ensemble.Count} and {others.Length} --also make {ensemble.Count + others.Length} surrogates; give at most {Protection.Surrogates.MaxMembers}");
            // Members that cannot share a batch (another image size or text context) are refused by the protector.
            foreach (var other in others)
            {
                TorchRuntime.Seed(ensemble.Count);   // a release of its own, even beside the same architecture
                ensemble.Add(new ClipModel(ClipPresets.Get(other, result.GetValue(quickGelu))).to(dev));
            }
            var named = result.GetValue(strength);
            var level = named is { } chosen ? Protection.StrengthLevel.Default(chosen) : Protection.StrengthLevel.Authors;
            int triggerWords = result.GetValue(triggerLength) ?? (named is null ? Protection.ProtectionOptions.DefaultTriggerLength : Protection.StrengthLevel.DefaultTriggerLength);
            var options = level.PostOptions(level.Epsilon, triggerWords, seed: 0, precision: products,
                inputDiversity: result.GetValue(levers.InputDiversity) ?? 0, ensembleStep: result.GetValue(levers.EnsembleStep) ?? Protection.EnsembleStep.Mean,
                skipErosion: result.GetValue(levers.SkipErosion) ?? 0) with { BatchSize = b };
            int rounds = level.Rounds;
            var words = TriggerVocabularyOption.Parse(result.GetValue(vocabulary)!, dev);
            if (words.Proposer is { } proposer) proposer.MaxCachedCaptions = 0;
            var protector = new Protection.BatchProtector(ensemble, options, words, dev);
            var data = Data.Synthetic.SyntheticScenes.Generate(b * (n + 1), seed: 1, testImages: 0, size: config.Vision.ImageSize).Items;
            var pixels = new Training.ImageTensors(config.Vision.ImageSize);
            TimeSpan pgd = TimeSpan.Zero, trigger = TimeSpan.Zero, surrogate = TimeSpan.Zero;
            var clock = new Stopwatch();
            for (int i = 0; i <= n; i++)
            {
                var posts = data.Skip(i * b).Take(b).ToList();
                using var scope = NewDisposeScope();
                var clean = PixelSpace.Unnormalize(pixels.Batch(posts.Select(p => p.Image).ToList(), dev));
                if (i == 1) clock.Start();
                var done = protector.Protect(clean, posts.Select(p => p.Captions[0]).ToList(), rounds, scratchSurrogateSteps: result.GetValue(surrogateSteps));
                if (i == 0) continue; // warm-up
                (pgd, trigger, surrogate) = (pgd + done.PgdTime, trigger + done.TriggerTime, surrogate + done.SurrogateTime);
            }
            clock.Stop();
            double seconds = clock.Elapsed.TotalSeconds;
            Console.WriteLine($"{Describe(ensemble)}{(ensemble.Count > 1 && options.EnsembleStep == Protection.EnsembleStep.Drawn ? " (one drawn per PGD step)" : "")}" +
                (options.InputDiversity > 0 ? $", input diversity {options.InputDiversity:G3}" : "") +
                (options.SkipErosion > 0 ? $", skip erosion {options.SkipErosion:G3}" : "") + $" on {dev}: batch {b}, {rounds} round(s) × {options.PgdSteps} PGD steps" +
                (named is null ? "" : $" ({named.Value.ToString().ToLowerInvariant()}: ε {level.Epsilon}, robust to {string.Join(", ", Protection.Robustness.PlatformTransforms.Describe(level.RobustTo).DefaultIfEmpty("nothing"))})") +
                $", trigger k={options.TriggerLength} top-{options.TopK} from {words.Name}, {products.ToString().ToLowerInvariant()} products, {n} batches");
            Console.WriteLine($"{b * n / seconds:F2} protected posts/s ({seconds / n:F2} s per batch)");
            Console.WriteLine($"time split: PGD {pgd.TotalSeconds / seconds:P0}, trigger search {trigger.TotalSeconds / seconds:P0}, surrogate steps {surrogate.TotalSeconds / seconds:P0}");
            PrintThroughput(ensemble.Select(m => m.Config).ToList(), options, rounds, b, n, data.Skip(b).Select(p => p.Captions[0]).ToList(), pgd, trigger, seconds, dev);
            return 0;
        }));
        return mem;
    }

    /// <summary>"tiny", "tiny × 2 members", or "tiny × 2 members + tiny-vit": each architecture with its count.</summary>
    static string Describe(IReadOnlyList<ClipModel> ensemble) => string.Join(" + ", ensemble.GroupBy(m => m.Config.Name)
        .Select(g => g.Count() > 1 ? $"{g.Key} × {g.Count()} members" : g.Key));

    /// <summary>
    /// Model FLOPs per second as open_clip's profile counts them (<see cref="ClipFlops"/>), so the distance to the CPU's
    /// peak is on the page. A PGD step is an image forward and a backward to the pixels (as much again; no weight
    /// gradients) plus a text forward; a search round encodes the images once, takes the trigger's gradient (text forward
    /// and backward) and scores trigger length × (top-k + 1) tries of the batch's rows.
    /// </summary>
    static void PrintThroughput(IReadOnlyList<ClipConfig> members, Protection.ProtectionOptions options, int rounds, int batch, int batches,
        IReadOnlyList<string> captions, TimeSpan pgd, TimeSpan trigger, double seconds, Device device)
    {
        int trigged = options.UsesTrigger ? options.TriggerLength : 0;
        int tokens = Math.Min(members.Min(m => m.Text.ContextLength), captions.Max(c => ClipTokenizer.Default.EncodeRaw(c).Count) + trigged + 2);
        // Each architecture's own costs: the ensemble's members need not share one.
        string perModel = string.Join("; ", members.DistinctBy(m => m.Name).Select(m =>
            $"{(members.Count > 1 ? m.Name + " " : "")}image {ClipFlops.Image(m) / 1e9:F2} G, a {tokens}-token caption {ClipFlops.Text(m, tokens) / 1e9:F2} G"));
        // Every member does its own architecture's work; a PGD step that follows one drawn member runs that member only,
        // counted here as an average member's work (approximate for mixed architectures: the draws need not split evenly).
        double pgdStep = members.Average(m => 2 * ClipFlops.Image(m) + ClipFlops.Text(m, tokens)) * (options.EnsembleStep == Protection.EnsembleStep.Drawn ? 1 : members.Count);
        double pgdFlops = batches * rounds * options.PgdSteps * batch * pgdStep;
        double searchFlops = options.UsesTrigger
            ? members.Sum(m => (double)batches * rounds * batch * (ClipFlops.Image(m) + 2 * ClipFlops.Text(m, tokens)
                + options.TriggerLength * (options.TopK + 1) * options.BeamWidth * ClipFlops.Text(m, tokens)))
            : 0;
        static string Rate(double flops, TimeSpan time) => time > TimeSpan.Zero ? $"{flops / time.TotalSeconds / 1e9:F0}" : "-";
        Console.WriteLine($"model FLOPs: {perModel}; achieved GFLOP/s: " +
            $"PGD {Rate(pgdFlops, pgd)}, trigger search {Rate(searchFlops, trigger)}, overall {(pgdFlops + searchFlops) / seconds / 1e9:F0}" +
            $" (this device's float32 matrix products: {MatrixProductRate(device) / 1e9:F0} GFLOP/s)");
    }

    /// <summary>What the device reaches on 2,048² float32 matrix products (about a second of them): the ceiling the model's rate is read against.</summary>
    static double MatrixProductRate(Device? device = null)
    {
        using var scope = NewDisposeScope();
        var (a, b) = (randn(2048, 2048, device: device), randn(2048, 2048, device: device));
        a.matmul(b);   // warm-up
        var clock = Stopwatch.StartNew();
        int products = 0;
        while (clock.Elapsed < TimeSpan.FromSeconds(1) || products < 3)
        {
            using var product = a.matmul(b);
            if (device?.type == DeviceType.CUDA) cuda.synchronize();
            products++;
        }
        return products * 2.0 * 2048 * 2048 * 2048 / clock.Elapsed.TotalSeconds;
    }
}
