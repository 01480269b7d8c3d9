using System.Text.Json.Nodes;

namespace Unlearnable.Training;

/// <summary>The evaluation file: {"i2t": {hit1, hit5, hit10, medr}, "t2i": {...}, "random": {"i2t", "t2i"}, "images": N}.</summary>
public static class RetrievalJson
{
    public static JsonObject ToJson(RetrievalReport r) => new()
    {
        ["i2t"] = Scores(r.ImageToText),
        ["t2i"] = Scores(r.TextToImage),
        ["random"] = new JsonObject { ["i2t"] = Scores(r.RandomImageToText), ["t2i"] = Scores(r.RandomTextToImage) },
        ["images"] = r.Images,
        ["captions"] = r.Captions,
    };

    public static JsonObject Scores(RetrievalScores s) => new()
    {
        ["hit1"] = Math.Round(s.Hit1, 3), ["hit5"] = Math.Round(s.Hit5, 3), ["hit10"] = Math.Round(s.Hit10, 3), ["medr"] = s.MedR,
    };

    public static void Write(RetrievalReport report, string path)
    {
        var dir = Path.GetDirectoryName(Path.GetFullPath(path));
        if (dir is not null) Directory.CreateDirectory(dir);
        File.WriteAllText(path, ToJson(report).ToJsonString(new() { WriteIndented = true }));
    }
}
