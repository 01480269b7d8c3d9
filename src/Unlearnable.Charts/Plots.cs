namespace Unlearnable.Charts;

/// <summary>One named line of a chart.</summary>
public sealed record Series(string Name, IReadOnlyList<double> X, IReadOnlyList<double> Y, bool Dashed = false);

/// <summary>Line charts as PNG with ScottPlot, drawn with the embedded DejaVu Sans (no system fonts needed).</summary>
public static class Plots
{
    const string FontName = "DejaVu Sans";
    /// <summary>The embedded font as a file (for text drawn outside ScottPlot).</summary>
    public static string FontFile => FontReady.Value;

    static readonly Lazy<string> FontReady = new(() =>
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
        return path;
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
        // Whole steps (epochs) get whole ticks, not 2.5.
        if (series.All(s => s.X.All(x => x == Math.Floor(x))))
            plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic { IntegerTicksOnly = true };
        // Beside the chart, never over the curves.
        plot.ShowLegend(ScottPlot.Edge.Right);
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        plot.SavePng(path, 1150, 560);
    }

    /// <summary>
    /// Bars per category, one colour per group (e.g. kept share per arm, one bar per direction); a missing value draws no bar.
    /// <paramref name="ranges"/> (per group, per category) draws each bar's range over repeated runs as a whisker.
    /// </summary>
    public static void GroupedBars(string path, string title, string yLabel, IReadOnlyList<string> categories, IReadOnlyList<(string Name, IReadOnlyList<double?> Values)> groups,
        IReadOnlyList<IReadOnlyList<(double Low, double High)?>>? ranges = null)
    {
        _ = FontReady.Value;
        var plot = new ScottPlot.Plot();
        plot.Font.Set(FontName);
        var palette = new ScottPlot.Palettes.Category10();
        // A category's bars side by side, one slot left empty between categories.
        double Position(int c, int g) => c * (groups.Count + 1) + g;
        var bars = new List<ScottPlot.Bar>();
        for (int c = 0; c < categories.Count; c++)
            for (int g = 0; g < groups.Count; g++)
                if (groups[g].Values[c] is { } value)
                    bars.Add(new ScottPlot.Bar { Position = Position(c, g), Value = value, FillColor = palette.GetColor(g) });
        plot.Add.Bars(bars);
        for (int c = 0; c < categories.Count && ranges is not null; c++)
            for (int g = 0; g < groups.Count; g++)
                if (ranges[g][c] is { } range)
                {
                    var whisker = plot.Add.Line(Position(c, g), range.Low, Position(c, g), range.High);
                    whisker.LineColor = ScottPlot.Colors.Black;
                    whisker.LineWidth = 2;
                }
        for (int g = 0; g < groups.Count; g++)
            plot.Legend.ManualItems.Add(new ScottPlot.LegendItem { LabelText = groups[g].Name, FillColor = palette.GetColor(g) });
        plot.Axes.Bottom.SetTicks(categories.Select((_, c) => Position(c, 0) + (groups.Count - 1) / 2.0).ToArray(), categories.ToArray());
        // Long arm names slant down to the left, each ending under its own group.
        plot.Axes.Bottom.TickLabelStyle.Rotation = -35;
        plot.Axes.Bottom.TickLabelStyle.Alignment = ScottPlot.Alignment.MiddleRight;
        plot.Axes.Bottom.MinimumSize = 150;
        plot.Axes.Left.MinimumSize = 120;
        plot.Add.HorizontalLine(0, 1, ScottPlot.Colors.Black);
        plot.Title(title);
        plot.YLabel(yLabel);
        plot.ShowLegend(ScottPlot.Edge.Right);   // beside the chart: bars of any height stay visible
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        plot.SavePng(path, Math.Max(800, 90 * categories.Count + 420), 620);
    }

    /// <summary>
    /// A 2-D embedding of paired points (an image and its caption): images and captions in two
    /// colours, each pair joined by a thin line, so aligned modalities show as short lines.
    /// </summary>
    public static void Pairs(string path, string title, IReadOnlyList<(double X, double Y)> images, IReadOnlyList<(double X, double Y)> captions)
    {
        _ = FontReady.Value;
        var plot = new ScottPlot.Plot();
        plot.Font.Set(FontName);
        for (int i = 0; i < Math.Min(images.Count, captions.Count); i++)
        {
            var link = plot.Add.Line(images[i].X, images[i].Y, captions[i].X, captions[i].Y);
            link.LineColor = ScottPlot.Colors.Gray.WithAlpha(0.4);
            link.LineWidth = 1;
        }
        var a = plot.Add.ScatterPoints(images.Select(p => p.X).ToArray(), images.Select(p => p.Y).ToArray());
        a.LegendText = "image";
        a.MarkerSize = 7;
        var b = plot.Add.ScatterPoints(captions.Select(p => p.X).ToArray(), captions.Select(p => p.Y).ToArray());
        b.LegendText = "caption";
        b.MarkerSize = 7;
        b.MarkerShape = ScottPlot.MarkerShape.OpenCircle;
        plot.Title(title);
        plot.ShowLegend(ScottPlot.Alignment.UpperRight);
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        plot.SavePng(path, 700, 640);
    }
}
