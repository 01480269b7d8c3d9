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
        var from = new Option<string>("--from") { Description = "Identity folders of photos (one sub-folder per person, e.g. LFW's lfw/)", Required = true };
        var facesOut = new Option<string>("--out") { Description = "Folder to write (one sub-folder of JPEG crops per person)", Required = true };
        var minPhotos = new Option<int>("--min-photos") { Description = "Only people with at least this many photos", DefaultValueFactory = _ => 1 };
        var maxPhotos = new Option<int>("--max-photos") { Description = "Only people with at most this many photos", DefaultValueFactory = _ => int.MaxValue };
        var crop = new Option<int>("--crop") { Description = "Side of the central square kept, in pixels", DefaultValueFactory = _ => 150 };
        minPhotos.Validators.Add(r => { if (r.GetValueOrDefault<int>() < 1) r.AddError("--min-photos must be at least 1"); });
        crop.Validators.Add(r => { if (r.GetValueOrDefault<int>() < 8) r.AddError("--crop must be at least 8 pixels"); });
        var faces = new Command("faces", "Select people by photo count from identity folders (LFW) and keep each photo's central square (the face in aligned sets)")
            { from, facesOut, minPhotos, maxPhotos, crop };
        faces.SetAction(result => CommandErrors.Run(() =>
        {
            var (people, photos) = FaceCrops.Write(IdentityFolders.Load(result.GetValue(from)!), result.GetValue(facesOut)!,
                result.GetValue(minPhotos), result.GetValue(maxPhotos), result.GetValue(crop));
            Console.WriteLine($"wrote {people} people, {photos} photos ({result.GetValue(crop)} px central squares) to {result.GetValue(facesOut)}");
            return 0;
        }));
        return new Command("dataset", "Create data sets") { synthetic, identities, faces };
    }
}
