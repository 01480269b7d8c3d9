using SkiaSharp;
using Unlearnable.Data.Formats;

namespace Unlearnable.Data.Tests;

public class Flickr8kAndKarpathyTests
{
    static string Flickr8kFolder(bool withUnassigned = true)
    {
        var folder = TestImages.TempFolder();
        Directory.CreateDirectory(Path.Combine(folder, "Flicker8k_Dataset"));
        var names = new[] { "1_a.jpg", "2_b.jpg", "3_c.jpg", "4_d.jpg" };
        foreach (var n in names) File.WriteAllBytes(Path.Combine(folder, "Flicker8k_Dataset", n), TestImages.Jpeg(16, 12, SKColors.Green));
        var tokens = names.Take(withUnassigned ? 4 : 3).SelectMany(n => Enumerable.Range(0, 5).Select(k => $"{n}#{k}\tcaption {k} of {n}"));
        File.WriteAllLines(Path.Combine(folder, Flickr8k.TokenFile), tokens);
        File.WriteAllLines(Path.Combine(folder, "Flickr_8k.trainImages.txt"), ["1_a.jpg"]);
        File.WriteAllLines(Path.Combine(folder, "Flickr_8k.devImages.txt"), ["2_b.jpg"]);
        File.WriteAllLines(Path.Combine(folder, "Flickr_8k.testImages.txt"), ["3_c.jpg"]);
        return folder;
    }

    [Fact]
    public void Flickr8kLoadsSplitsAndSaysWhatItDidNotUse()
    {
        var data = DatasetLoader.Load(Flickr8kFolder());
        Assert.Equal(3, data.Items.Count);
        Assert.Equal("1_a", data.Of(Split.Train).Single().Id);
        Assert.Equal(Split.Val, data.Items.Single(i => i.Id == "2_b").Split);
        Assert.Equal(5, data.Of(Split.Test).Single().Captions.Count);
        Assert.Equal("caption 0 of 3_c.jpg", data.Of(Split.Test).Single().Captions[0]);
        Assert.Contains(data.Notes, n => n.Contains("1 images") && n.Contains("no split"));
    }

    [Fact]
    public void Flickr8kErrorsNameFileAndLine()
    {
        var folder = Flickr8kFolder();
        File.AppendAllLines(Path.Combine(folder, Flickr8k.TokenFile), ["no tab or hash here"]);
        var e = Assert.Throws<DataFormatException>(() => DatasetLoader.Load(folder));
        Assert.Equal(21, e.Line);

        folder = Flickr8kFolder();
        File.Delete(Path.Combine(folder, "Flicker8k_Dataset", "3_c.jpg"));
        Assert.Contains("3_c.jpg", Assert.Throws<DataFormatException>(() => DatasetLoader.Load(folder)).Message);

        folder = Flickr8kFolder(withUnassigned: false);
        File.AppendAllLines(Path.Combine(folder, "Flickr_8k.testImages.txt"), ["4_d.jpg"]);
        e = Assert.Throws<DataFormatException>(() => DatasetLoader.Load(folder));
        Assert.Equal(2, e.Line);
        Assert.Contains("has no captions", e.Message);
    }

    [Fact]
    public void KarpathyJsonLoadsWithRestvalAsTrain()
    {
        var folder = TestImages.TempFolder();
        Directory.CreateDirectory(Path.Combine(folder, "val2014"));
        File.WriteAllBytes(Path.Combine(folder, "val2014", "x.jpg"), TestImages.Jpeg(10, 10, SKColors.Red));
        File.WriteAllBytes(Path.Combine(folder, "val2014", "y.jpg"), TestImages.Jpeg(10, 10, SKColors.Blue));
        File.WriteAllText(Path.Combine(folder, "dataset_coco.json"), """
            {"dataset": "coco", "images": [
              {"filepath": "val2014", "filename": "x.jpg", "split": "restval", "sentences": [{"raw": "A red thing."}, {"raw": "Red."}]},
              {"filepath": "val2014", "filename": "y.jpg", "split": "test", "sentences": [{"raw": "A blue thing."}]}]}
            """);
        var data = DatasetLoader.Load(folder);
        Assert.Equal("coco", data.Name);
        Assert.Equal(Split.Train, data.Items[0].Split);
        Assert.Equal(["A red thing.", "Red."], data.Items[0].Captions);
        Assert.Equal(Split.Test, data.Items[1].Split);

        File.Delete(Path.Combine(folder, "val2014", "y.jpg"));
        Assert.Contains("images[1]", Assert.Throws<DataFormatException>(() => DatasetLoader.Load(folder)).Message);
    }

    [Fact]
    public void IdentityFoldersLoadAndRefuseEmptyOrUnknownContent()
    {
        var root = TestImages.TempFolder();
        foreach (var person in new[] { "alice", "bob" })
        {
            Directory.CreateDirectory(Path.Combine(root, person));
            File.WriteAllBytes(Path.Combine(root, person, "1.png"), TestImages.Png(8, 8, SKColors.White));
            File.WriteAllBytes(Path.Combine(root, person, "2.pgm"), "P5\n1 1\n255\n\u0080"u8.ToArray());
        }
        var people = IdentityFolders.Load(root);
        Assert.Equal(["alice", "bob"], people.Select(p => p.Name));
        Assert.All(people, p => Assert.Equal(2, p.Images.Count));

        Directory.CreateDirectory(Path.Combine(root, "carol"));
        Assert.Contains("no images", Assert.Throws<DataFormatException>(() => IdentityFolders.Load(root)).Message);
        File.WriteAllText(Path.Combine(root, "carol", "notes.txt"), "x");
        Assert.Contains("notes.txt", Assert.Throws<DataFormatException>(() => IdentityFolders.Load(root)).Message);
    }
}
