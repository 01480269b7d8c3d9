using Unlearnable.Clip.Model;
using SkiaSharp;
using TorchSharp;
using Unlearnable.Clip.Checkpoints;
using Unlearnable.Data;
using Unlearnable.Charts;
using Unlearnable.Imaging;
using Unlearnable.Training;
using static Unlearnable.Evaluation.ReportFigures;

namespace Unlearnable.Evaluation;

/// <summary>
/// attention.png (the paper's Fig. 5): for held-out photos, where the clean hacker's and the protected hacker's image
/// towers look when matching each photo to its caption (Grad-CAM over the photo as the model sees it). A hacker that
/// learned the person looks at the face; one that learned the shortcut looks elsewhere or nowhere.
/// </summary>
public static class AttentionFigure
{
    public static void Write(string path, string cleanCheckpoint, string protectedCheckpoint, IReadOnlyList<CaptionedImage> test, torch.Device device, int rows = 6)
    {
        var items = test.Take(rows).ToList();
        var captions = items.Select(t => t.Captions[0]).ToList();
        float[][] Maps(string checkpoint, out float[][] pixels01)
        {
            using var model = ClipCheckpoint.Load(checkpoint, device);
            int size = model.Config.Vision.ImageSize;
            pixels01 = items.Select(t =>
            {
                using var bitmap = SafeImageDecoder.Decode(t.Image.ReadBytes(), what: t.Image.Name);
                return ClipPreprocess.ToChw01(bitmap, size);
            }).ToArray();
            using var batch = torch.tensor(pixels01.SelectMany(p => p).ToArray(), [items.Count, 3, size, size]);
            using var normalised = PixelSpace.Normalize(batch);
            return AttentionMaps.GradCam(model, normalised, captions, device);
        }
        var cleanMaps = Maps(cleanCheckpoint, out var photos);
        var protectedMaps = Maps(protectedCheckpoint, out _);

        using var typeface = SKTypeface.FromFile(Plots.FontFile);
        using var font = new SKFont(typeface, 12);
        using var ink = new SKPaint { Color = SKColors.Black, IsAntialias = true };
        int width = 3 * Cell + 4 * Pad, rowHeight = Cell + 24 + Pad;
        using var surface = SKSurface.Create(new SKImageInfo(width, 28 + items.Count * rowHeight));
        var canvas = surface.Canvas;
        canvas.Clear(SKColors.White);
        string[] headings = ["held-out photo", "clean hacker looks at", "protected hacker looks at"];
        for (int c = 0; c < 3; c++) canvas.DrawText(headings[c], Pad + c * (Cell + Pad), 18, SKTextAlign.Left, font, ink);
        for (int r = 0; r < items.Count; r++)
        {
            int top = 28 + r * rowHeight;
            using var photo = Bitmap(photos[r], null);
            using var cleanOverlay = Bitmap(photos[r], cleanMaps[r]);
            using var protectedOverlay = Bitmap(photos[r], protectedMaps[r]);
            Draw(canvas, photo, Pad, top);
            Draw(canvas, cleanOverlay, 2 * Pad + Cell, top);
            Draw(canvas, protectedOverlay, 3 * Pad + 2 * Cell, top);
            canvas.DrawText(Fit(captions[r], font, width - 2 * Pad), Pad, top + Cell + 16, SKTextAlign.Left, font, ink);
        }
        using var image = surface.Snapshot();
        using var png = image.Encode(SKEncodedImageFormat.Png, 100);
        File.WriteAllBytes(path, png.ToArray());
    }

    /// <summary>The photo (CHW in [0, 1]); with a map, blended half and half with the map's heat colours.</summary>
    static SKBitmap Bitmap(float[] chw, float[]? map)
    {
        int size = (int)Math.Round(Math.Sqrt(chw.Length / 3.0)), plane = size * size;
        var bitmap = new SKBitmap(size, size);
        for (int i = 0; i < plane; i++)
        {
            double r = chw[i], g = chw[plane + i], b = chw[2 * plane + i];
            if (map is not null)
            {
                var (hr, hg, hb) = Heat(map[i]);
                (r, g, b) = (0.5 * r + 0.5 * hr, 0.5 * g + 0.5 * hg, 0.5 * b + 0.5 * hb);
            }
            bitmap.SetPixel(i % size, i / size, new SKColor(Byte(r), Byte(g), Byte(b)));
        }
        return bitmap;
    }

    // Blue (0) through green and yellow to red (1), like the "jet" maps Grad-CAM figures use.
    static (double R, double G, double B) Heat(double v) =>
        (Math.Clamp(1.5 - Math.Abs(4 * v - 3), 0, 1), Math.Clamp(1.5 - Math.Abs(4 * v - 2), 0, 1), Math.Clamp(1.5 - Math.Abs(4 * v - 1), 0, 1));

    static byte Byte(double v) => (byte)Math.Clamp(Math.Round(v * 255), 0, 255);
}
