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
        var identitiesOut = new Option<string>("--out") { Description = "Folder to write (one sub-folder of PNGs per person)", Required = true };
        var people = new Option<int>("--identities") { Description = "Number of people", DefaultValueFactory = _ => 40 };
        var photos = new Option<int>("--photos") { Description = "Photos per person", DefaultValueFactory = _ => 8 };
        var faceSize = new Option<int>("--size") { Description = "Image side in pixels", DefaultValueFactory = _ => 64 };
        var faceSeed = SharedOptions.Seed();
        var identities = new Command("identities", "Write synthetic identities (faces) as identity folders, for the face-privacy study")
            { identitiesOut, people, photos, faceSize, faceSeed };
        identities.SetAction(result => CommandErrors.Run(() =>
        {
            var written = Data.Synthetic.Faces.SyntheticIdentities.Write(result.GetValue(identitiesOut)!, result.GetValue(people), result.GetValue(photos),
                result.GetValue(faceSeed), result.GetValue(faceSize));
            Console.WriteLine($"wrote {written.Count} identities × {result.GetValue(photos)} photos to {result.GetValue(identitiesOut)}");
            return 0;
        }));
        return new Command("dataset", "Create data sets") { synthetic, identities };
    }
}
