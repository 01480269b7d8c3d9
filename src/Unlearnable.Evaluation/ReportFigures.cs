using SkiaSharp;
using TorchSharp;
using Unlearnable.Clip.Checkpoints;
using Unlearnable.Data;
using Unlearnable.Charts;
using Unlearnable.Imaging;
using Unlearnable.Training;
using static TorchSharp.torch;

namespace Unlearnable.Evaluation;

/// <summary>
/// The pictures of a report: <c>examples.png</c> (clean and protected training pairs side by side,
/// with the noise magnified and both captions) and a t-SNE of held-out image and caption features
/// for the clean and the protected hacker (paper Fig. 6).
/// </summary>
public static class ReportFigures
{
    internal const int Cell = 160, Pad = 8, TextHeight = 44;

    public static void Write(string outDir, AttackReport report, JobData data, IReadOnlyList<CaptionedImage>? protectedTrain,
        Func<ArmPlan, string> checkpointOf, IReadOnlyList<ArmPlan> arms, Device device)
    {
        if (protectedTrain is not null) Examples(Path.Combine(outDir, "examples.png"), data.Train, protectedTrain, report.Spec.Protection.Epsilon);
        var main = new Dictionary<string, string>();
        foreach (var kind in new[] { ArmKinds.Clean, ArmKinds.Protected })
        {
            var arm = arms.FirstOrDefault(a => a.Kind == kind && a.Architecture == report.Spec.Preset && a.Release is null && a.Countermeasure is null && a.Fraction is 0 or 1);
            if (arm is null || !File.Exists(checkpointOf(arm))) continue;
            main[kind] = checkpointOf(arm);
            FeatureMap(Path.Combine(outDir, $"tsne-{kind}.png"), $"Held-out features of the {arm.Name} hacker (t-SNE)", checkpointOf(arm), data.Test, report.Spec.Seed, device);
        }
        if (main.TryGetValue(ArmKinds.Clean, out var clean) && main.TryGetValue(ArmKinds.Protected, out var protectedHacker))
            AttentionFigure.Write(Path.Combine(outDir, "attention.png"), clean, protectedHacker, data.Test, device);
    }

    public static void Examples(string path, IReadOnlyList<CaptionedImage> clean, IReadOnlyList<CaptionedImage> protectedItems, double epsilon, int rows = 4)
    {
        rows = Math.Min(rows, clean.Count);
        using var typeface = SKTypeface.FromFile(Plots.FontFile);
        using var font = new SKFont(typeface, 12);
        using var ink = new SKPaint { Color = SKColors.Black, IsAntialias = true };
        int width = 3 * Cell + 4 * Pad, rowHeight = Cell + TextHeight + Pad;
        using var surface = SKSurface.Create(new SKImageInfo(width, 28 + rows * rowHeight));
        var canvas = surface.Canvas;
        canvas.Clear(SKColors.White);
        canvas.DrawText("clean", Pad, 18, SKTextAlign.Left, font, ink);
        canvas.DrawText("protected", 2 * Pad + Cell, 18, SKTextAlign.Left, font, ink);
        canvas.DrawText($"noise ×{128 / Math.Max(1, epsilon):F0}", 3 * Pad + 2 * Cell, 18, SKTextAlign.Left, font, ink);
        for (int r = 0; r < rows; r++)
        {
            int i = r * clean.Count / rows, top = 28 + r * rowHeight;
            using var a = SafeImageDecoder.Decode(clean[i].Image.ReadBytes(), what: clean[i].Image.Name);
            using var b = SafeImageDecoder.Decode(protectedItems[i].Image.ReadBytes(), what: protectedItems[i].Image.Name);
            using var noise = Magnified(a, b, 128 / Math.Max(1, epsilon));
            Draw(canvas, a, Pad, top);
            Draw(canvas, b, 2 * Pad + Cell, top);
            if (noise is not null) Draw(canvas, noise, 3 * Pad + 2 * Cell, top);
            canvas.DrawText(Fit("clean: " + clean[i].Captions[0], font, width - 2 * Pad), Pad, top + Cell + 16, SKTextAlign.Left, font, ink);
            canvas.DrawText(Fit("protected: " + protectedItems[i].Captions[0], font, width - 2 * Pad), Pad, top + Cell + 34, SKTextAlign.Left, font, ink);
        }
        using var image = surface.Snapshot();
        using var png = image.Encode(SKEncodedImageFormat.Png, 100);
        File.WriteAllBytes(path, png.ToArray());
    }

    internal static void Draw(SKCanvas canvas, SKBitmap bitmap, int left, int top)
    {
        float scale = Math.Min((float)Cell / bitmap.Width, (float)Cell / bitmap.Height);
        var rect = SKRect.Create(left, top, bitmap.Width * scale, bitmap.Height * scale);
        using var image = SKImage.FromBitmap(bitmap);
        canvas.DrawImage(image, rect, new SKSamplingOptions(SKFilterMode.Nearest));
    }

    /// <summary>(protected − clean) × gain around mid-grey; null when the two differ in size.</summary>
    static SKBitmap? Magnified(SKBitmap clean, SKBitmap protectedImage, double gain)
    {
        if (clean.Width != protectedImage.Width || clean.Height != protectedImage.Height) return null;
        var result = new SKBitmap(clean.Width, clean.Height);
        for (int y = 0; y < clean.Height; y++)
            for (int x = 0; x < clean.Width; x++)
            {
                SKColor c = clean.GetPixel(x, y), p = protectedImage.GetPixel(x, y);
                byte Channel(byte from, byte to) => (byte)Math.Clamp(128 + gain * (to - from), 0, 255);
                result.SetPixel(x, y, new SKColor(Channel(c.Red, p.Red), Channel(c.Green, p.Green), Channel(c.Blue, p.Blue)));
            }
        return result;
    }

    internal static string Fit(string text, SKFont font, float width)
    {
        if (font.MeasureText(text) <= width) return text;
        while (text.Length > 1 && font.MeasureText(text + "…") > width) text = text[..^1];
        return text + "…";
    }

    static void FeatureMap(string path, string title, string checkpoint, IReadOnlyList<CaptionedImage> test, int seed, Device device, int maxImages = 120)
    {
        using var model = ClipCheckpoint.Load(checkpoint, device);
        var items = test.Take(maxImages).Select(t => t with { Captions = [t.Captions[0]] }).ToList();
        var (images, texts, _) = Evaluator.Features(model, items, new ImageTensors(model.Config.Vision.ImageSize), device);
        double[][] Rows(Tensor t)
        {
            using var normalised = nn.functional.normalize(t, dim: -1).cpu().to(float64);
            var flat = normalised.data<double>().ToArray();
            int d = (int)t.shape[1];
            return Enumerable.Range(0, (int)t.shape[0]).Select(r => flat.AsSpan(r * d, d).ToArray()).ToArray();
        }
        var points = Rows(images).Concat(Rows(texts)).ToArray();
        images.Dispose();
        texts.Dispose();
        var embedded = Tsne.Embed(points, seed);
        Plots.Pairs(path, title, embedded[..items.Count], embedded[items.Count..]);
    }
}
