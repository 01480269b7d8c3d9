using System.CommandLine;
using Unlearnable.Data.Formats;
using Unlearnable.Data.Synthetic;

namespace Unlearnable.Cli.Commands;

static class DatasetCommand
{
    public static Command Create()
    {
        var output = new Option<string>("--out") { Description = "Folder to write (captions.jsonl + images/)", Required = true };
        var images = new Option<int>("--images") { Description = "Number of images", DefaultValueFactory = _ => 1200 };
        var test = new Option<int?>("--test") { Description = "Images in the test split (default min(200, images/5))" };
        var size = new Option<int>("--size") { Description = "Image side in pixels", DefaultValueFactory = _ => 96 };
        var seed = SharedOptions.Seed();
        var synthetic = new Command("synthetic", "Write the built-in synthetic captioned scenes in the generic captions.jsonl format")
            { output, images, test, size, seed };
        synthetic.SetAction(result => CommandErrors.Run(() =>
        {
            var data = SyntheticScenes.Generate(result.GetValue(images), result.GetValue(seed), result.GetValue(test), result.GetValue(size));
            CaptionsJsonl.Save(data, result.GetValue(output)!);
            Console.WriteLine($"wrote {data.Summary()} to {result.GetValue(output)}");
            return 0;
        }));
        return new Command("dataset", "Create data sets") { synthetic };
    }
}
