using Spectre.Console;
using Unlearnable.Training;

namespace Unlearnable.Cli.Commands;

static class RetrievalPrinter
{
    public static void Print(RetrievalReport r)
    {
        var table = new Table().Title($"retrieval on {r.Images} images / {r.Captions} captions")
            .AddColumns("", "Hit@1 %", "Hit@5 %", "Hit@10 %", "MedR");
        void Row(string name, RetrievalScores s) =>
            table.AddRow(name, $"{s.Hit1:F1}", $"{s.Hit5:F1}", $"{s.Hit10:F1}", $"{s.MedR:F1}");
        Row("image→text", r.ImageToText);
        Row("text→image", r.TextToImage);
        Row("random image→text", r.RandomImageToText);
        Row("random text→image", r.RandomTextToImage);
        AnsiConsole.Write(table);
    }
}
