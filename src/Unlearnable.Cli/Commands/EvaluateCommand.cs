using System.CommandLine;
using Unlearnable.Clip.Checkpoints;
using Unlearnable.Clip.Model;
using Unlearnable.Clip.Runtime;
using Unlearnable.Data;
using Unlearnable.Training;

namespace Unlearnable.Cli.Commands;

static class EvaluateCommand
{
    public static Command Create()
    {
        var checkpoint = new Option<string>("--checkpoint") { Description = "Model checkpoint", Required = true };
        var data = new Option<string>("--data") { Description = "Data folder", Required = true };
        var split = new Option<string>("--split") { Description = "train, val or test", DefaultValueFactory = _ => "test" };
        var json = new Option<string?>("--json") { Description = "Write the figures to this JSON file" };
        var preset = SharedOptions.Preset(required: false);
        preset.Description = "Architecture of a checkpoint that carries no config (default: inferred from its tensor shapes)";
        var quickGelu = SharedOptions.QuickGelu();
        var device = SharedOptions.Device();
        var command = new Command("evaluate", "Image↔text retrieval (Hit@1/5/10, MedR) on a clean split, with the random baseline")
            { checkpoint, data, split, json, preset, quickGelu, device };
        command.SetAction(result => CommandErrors.Run(() =>
        {
            var dev = Devices.Resolve(result.GetValue(device)!);
            var splitValue = Enum.TryParse<Split>(result.GetValue(split), ignoreCase: true, out var s)
                ? s : throw new ArgumentException($"--split must be train, val or test, not '{result.GetValue(split)}'");
            var model = SharedOptions.LoadCheckpoint(result.GetValue(checkpoint)!, result, preset, quickGelu, dev);
            var items = DatasetLoader.Load(result.GetValue(data)!).Of(splitValue);
            if (items.Count == 0) throw new ArgumentException($"the {splitValue.ToString().ToLowerInvariant()} split is empty");
            var report = Evaluator.Evaluate(model, items, new ImageTensors(model.Config.Vision.ImageSize), dev);
            RetrievalPrinter.Print(report);
            if (result.GetValue(json) is { } path) RetrievalJson.Write(report, path);
            return 0;
        }));
        return command;
    }
}
