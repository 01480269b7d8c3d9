using SkiaSharp;
using Unlearnable.Data.Formats;
using Unlearnable.Data.Synthetic;

namespace Unlearnable.Data.Tests;

public class CaptionsJsonlTests
{
    [Fact]
    public void SaveThenLoadKeepsImagesCaptionsAndSplits()
    {
        var folder = TestImages.TempFolder();
        var data = SyntheticScenes.Generate(12, seed: 2, testImages: 3);
        CaptionsJsonl.Save(data, folder);
        var loaded = DatasetLoader.Load(folder);
        Assert.Equal(data.Items.Count, loaded.Items.Count);
        for (int i = 0; i < data.Items.Count; i++)
        {
            Assert.Equal(data.Items[i].Captions, loaded.Items[i].Captions);
            Assert.Equal(data.Items[i].Split, loaded.Items[i].Split);
            Assert.Equal(data.Items[i].Image.ReadBytes(), loaded.Items[i].Image.ReadBytes());
        }
    }

    static string FolderWith(params string[] lines)
    {
        var folder = TestImages.TempFolder();
        Directory.CreateDirectory(Path.Combine(folder, "images"));
        File.WriteAllBytes(Path.Combine(folder, "images", "a.png"), TestImages.Png(8, 8, SKColors.Red));
        File.WriteAllLines(Path.Combine(folder, CaptionsJsonl.FileName), lines);
        return folder;
    }

    const string Good = """{"image": "images/a.png", "captions": ["a red square"], "split": "train"}""";

    [Theory]
    [InlineData("""{"image": "images/missing.png", "captions": ["x"], "split": "train"}""", "does not exist")]
    [InlineData("""{"image": "images/a.png", "captions": ["ok", "   "], "split": "train"}""", "caption is empty")]
    [InlineData("""{"image": "images/a.png", "captions": [], "split": "train"}""", "non-empty array")]
    [InlineData("""{"image": "images/a.png", "captions": ["x"], "split": "holdout"}""", "split 'holdout'")]
    [InlineData("""{"image": "../outside.png", "captions": ["x"], "split": "train"}""", "inside the folder")]
    [InlineData("""{"image": "images/a.png", "captions": ["x"]""", "not a JSON object")]
    public void BadLinesAreReportedWithFileAndLine(string badLine, string expected)
    {
        var folder = FolderWith("", badLine);
        var e = Assert.Throws<DataFormatException>(() => DatasetLoader.Load(folder));
        Assert.Equal(2, e.Line);
        Assert.EndsWith(CaptionsJsonl.FileName, e.File);
        Assert.Contains(expected, e.Message);
        Assert.Contains($"{CaptionsJsonl.FileName}:2:", e.Message);
    }

    [Fact]
    public void InvalidUtf8IsAnErrorNamingTheLine()
    {
        var folder = FolderWith(Good);
        var path = Path.Combine(folder, CaptionsJsonl.FileName);
        var bytes = File.ReadAllBytes(path).ToList();
        bytes.AddRange("{\"image\": \"images/a.png\", \"captions\": [\"caf"u8.ToArray());
        bytes.AddRange(new byte[] { 0xC3, 0x28 }); // invalid UTF-8 sequence
        bytes.AddRange("\"], \"split\": \"test\"}\n"u8.ToArray());
        File.WriteAllBytes(path, bytes.ToArray());
        var e = Assert.Throws<DataFormatException>(() => DatasetLoader.Load(folder));
        Assert.Equal(2, e.Line);
        Assert.Contains("UTF-8", e.Message);
    }

    [Fact]
    public void DuplicateImagesAndMissingFoldersAreErrors()
    {
        Assert.Contains("listed twice", Assert.Throws<DataFormatException>(() => DatasetLoader.Load(FolderWith(Good, Good))).Message);
        Assert.Contains("does not exist", Assert.Throws<DataFormatException>(() => DatasetLoader.Load("/nonexistent/folder")).Message);
        Assert.Contains("not a data folder", Assert.Throws<DataFormatException>(() => DatasetLoader.Load(TestImages.TempFolder())).Message);
    }
}
