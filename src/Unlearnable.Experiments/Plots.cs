namespace Unlearnable.Experiments;

/// <summary>One named line of a chart.</summary>
public sealed record Series(string Name, IReadOnlyList<double> X, IReadOnlyList<double> Y, bool Dashed = false);

/// <summary>Line charts as PNG with ScottPlot, drawn with the embedded DejaVu Sans (no system fonts needed).</summary>
public static class Plots
{
    const string FontName = "DejaVu Sans";
    static readonly Lazy<bool> FontReady = new(() =>
    {
        var path = Path.Combine(Path.GetTempPath(), "unlearnable-fonts", "DejaVuSans.ttf");
        if (!File.Exists(path))
        {
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            using var resource = typeof(Plots).Assembly.GetManifestResourceStream("DejaVuSans.ttf")
                ?? throw new InvalidOperationException("the plot font is missing from the assembly");
            using var file = File.Create(path + ".tmp");
            resource.CopyTo(file);
            file.Close();
            File.Move(path + ".tmp", path, overwrite: true);
        }
        ScottPlot.Fonts.AddFontFile(FontName, path);
        return true;
    });

    public static void Lines(string path, string title, string xLabel, string yLabel, IEnumerable<Series> series, bool logY = false)
    {
        _ = FontReady.Value;
        var plot = new ScottPlot.Plot();
        plot.Font.Set(FontName);
        foreach (var s in series)
        {
            var ys = logY ? s.Y.Select(v => Math.Log10(Math.Max(v, 1e-9))).ToArray() : s.Y.ToArray();
            var line = plot.Add.Scatter(s.X.ToArray(), ys);
            line.LegendText = s.Name;
            line.LineWidth = 2;
            if (s.Dashed) line.LinePattern = ScottPlot.LinePattern.Dashed;
        }
        plot.Title(title);
        plot.XLabel(xLabel);
        plot.YLabel(logY ? yLabel + " (log10)" : yLabel);
        plot.ShowLegend(ScottPlot.Alignment.UpperRight);
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        plot.SavePng(path, 900, 560);
    }
}
