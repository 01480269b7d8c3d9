using TorchSharp;
using System.CommandLine;
using System.Diagnostics;
using Unlearnable.Clip.Checkpoints;
using Unlearnable.Clip.Model;
using Unlearnable.Clip.Runtime;
using Unlearnable.Data;
using Unlearnable.Data.Synthetic;
using Unlearnable.Training;

namespace Unlearnable.Cli.Commands;

/// <summary>
/// The main job on the embedded default: generate the synthetic scenes, train a CLIP on the
/// training split and print clean retrieval against the random baseline. Needs no files.
/// </summary>
static class DemoCommand
{
    public static Command Create()
    {
        var preset = SharedOptions.Preset(required: false);
        var images = new Option<int>("--images") { Description = "Synthetic images (the last 200 are the test split)", DefaultValueFactory = _ => 1200 };
        var epochs = new Option<int>("--epochs") { Description = "Training epochs", DefaultValueFactory = _ => 30 };
        var batch = new Option<int>("--batch-size") { Description = "Pairs per batch", DefaultValueFactory = _ => 64 };
        var output = new Option<string?>("--out") { Description = "Also save the trained checkpoint here" };
        var json = new Option<string?>("--json") { Description = "Also write the figures to this JSON file" };
        var device = SharedOptions.Device();
        var seed = SharedOptions.Seed();
        var command = new Command("demo", "Train a CLIP on the built-in synthetic scenes and print its retrieval figures")
            { preset, images, epochs, batch, output, json, device, seed };
        command.SetAction((result, cancel) => CommandErrors.Run(() =>
        {
            var config = ClipPresets.Get(result.GetValue(preset)!);
            var dev = Devices.Resolve(result.GetValue(device)!);
            var options = new TrainingOptions
            {
                Epochs = result.GetValue(epochs), BatchSize = result.GetValue(batch), Seed = result.GetValue(seed), WarmupSteps = 20,
            };
            options.Validate();

            var clock = Stopwatch.StartNew();
            var data = SyntheticScenes.Generate(result.GetValue(images), result.GetValue(seed));
            Console.WriteLine($"{data.Summary()} generated in {clock.Elapsed.TotalSeconds:F1} s");
            TorchRuntime.Seed(options.Seed);
            var model = new ClipModel(config);
            model.to(dev);
            Console.WriteLine($"model {config} on {dev}");

            var pixels = new ImageTensors(config.Vision.ImageSize);
            clock.Restart();
            TrainingProgress.Run(model, options, dev, data.Of(Split.Train), pixels, null, cancel);
            var trainTime = clock.Elapsed;
            var report = Evaluator.Evaluate(model, data.Of(Split.Test), pixels, dev);
            RetrievalPrinter.Print(report);
            Console.WriteLine($"training time {trainTime.TotalSeconds:F1} s; image→text MedR {report.ImageToText.MedR:F1} vs random {report.RandomImageToText.MedR:F1} " +
                              $"({report.RandomImageToText.MedR / report.ImageToText.MedR:F1}x better)");
            if (result.GetValue(output) is { } path) ClipCheckpoint.Save(model, path);
            if (result.GetValue(json) is { } jsonPath) RetrievalJson.Write(report, jsonPath);
            return Task.FromResult(0);
        }));
        return command;
    }
}
