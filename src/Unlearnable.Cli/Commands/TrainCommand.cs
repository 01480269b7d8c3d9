using TorchSharp;
using System.CommandLine;
using System.Diagnostics;
using Unlearnable.Clip.Checkpoints;
using Unlearnable.Clip.Model;
using Unlearnable.Clip.Runtime;
using Unlearnable.Data;
using Unlearnable.Training;

namespace Unlearnable.Cli.Commands;

static class TrainCommand
{
    public static Command Create()
    {
        var preset = SharedOptions.Preset(required: false);
        var quickGelu = SharedOptions.QuickGelu();
        var data = new Option<string>("--data") { Description = "Data folder (captions.jsonl, Flickr8k or Karpathy layout)", Required = true };
        var epochs = new Option<int>("--epochs") { Description = "Epochs", DefaultValueFactory = _ => 32 };
        var output = new Option<string>("--out") { Description = "Checkpoint to write (.safetensors, or any other name for TorchSharp format)", Required = true };
        var batch = new Option<int>("--batch-size") { Description = "Pairs per batch", DefaultValueFactory = _ => 128 };
        var lr = new Option<double>("--lr") { Description = "Peak learning rate", DefaultValueFactory = _ => 5e-4 };
        var warmup = new Option<int>("--warmup") { Description = "Warm-up steps", DefaultValueFactory = _ => 50 };
        var resume = new Option<bool>("--resume") { Description = "Continue the run saved at --out" };
        var init = new Option<string?>("--init")
        {
            Description = "Start from these weights instead of a fresh --preset model (fine-tuning): ours, or OpenAI / open_clip weights " +
                "(.pt, .bin, .safetensors; architecture from the file, an explicit --preset, or its shapes)",
        };
        var device = SharedOptions.Device();
        var seed = SharedOptions.Seed();
        var command = new Command("train", "Train a CLIP on the training split, from scratch or from given weights (--init)") { preset, quickGelu, data, epochs, output, batch, lr, warmup, resume, init, device, seed };
        command.SetAction((result, cancel) => CommandErrors.Run(() =>
        {
            var dev = Devices.Resolve(result.GetValue(device)!);
            var checkpoint = result.GetValue(output)!;
            var options = new TrainingOptions
            {
                Epochs = result.GetValue(epochs), BatchSize = result.GetValue(batch), LearningRate = result.GetValue(lr),
                WarmupSteps = result.GetValue(warmup), Seed = result.GetValue(seed),
            };
            options.Validate();
            var dataset = DatasetLoader.Load(result.GetValue(data)!);
            foreach (var note in dataset.Notes) Console.WriteLine("note: " + note);
            var train = dataset.Of(Split.Train);
            if (train.Count < 2) throw new ArgumentException($"{dataset.Name} has {train.Count} training images; at least 2 are needed");

            bool saved = File.Exists(ClipTrainer.StatePath(checkpoint));
            if (saved && !result.GetValue(resume))
                throw new RunConflictException($"{checkpoint} already holds a training run; pass --resume to continue it or choose another --out.");
            TorchRuntime.Seed(options.Seed);
            var model = saved ? ClipCheckpoint.Load(checkpoint, dev)
                : result.GetValue(init) is { } start ? SharedOptions.LoadCheckpoint(start, result, preset, quickGelu, dev)
                : new ClipModel(SharedOptions.Architecture(result, preset, quickGelu));
            model.to(dev);
            Console.WriteLine($"{dataset.Summary()}\nmodel {model.Config} on {dev}");

            var clock = Stopwatch.StartNew();
            var state = TrainingProgress.Run(model, options, dev, train, new ImageTensors(model.Config.Vision.ImageSize), checkpoint, cancel);
            Console.WriteLine($"trained {state.EpochsDone} epochs in {clock.Elapsed.TotalSeconds:F1} s; final loss {state.EpochLosses[^1]:F4}; checkpoint {checkpoint}");
            return Task.FromResult(0);
        }));
        return command;
    }
}
