using SkiaSharp;

namespace Unlearnable.Data.Synthetic;

/// <summary>Draws a scene with Skia: patterned background, then each object, anti-aliased, with mild noise.</summary>
public static class SceneRenderer
{
    public static SKBitmap Render(Scene scene, int size, Random rng)
    {
        var bitmap = new SKBitmap(new SKImageInfo(size, size, SKColorType.Rgba8888, SKAlphaType.Unpremul));
        using (var canvas = new SKCanvas(bitmap))
        {
            DrawBackground(canvas, scene, size, rng);
            foreach (var o in scene.Objects) DrawObject(canvas, o, size, Jitter(o.Color.Color, rng, 18));
        }
        AddNoise(bitmap, rng, 6);
        return bitmap;
    }

    static void DrawBackground(SKCanvas canvas, Scene scene, int size, Random rng)
    {
        var bg = Jitter(scene.Background.Color, rng, 12);
        canvas.Clear(bg);
        var accent = Shade(bg, bg.Red + bg.Green + bg.Blue > 380 ? 0.75f : 1.45f);
        using var paint = new SKPaint { Color = accent, IsAntialias = true };
        float step = size / (6f + rng.Next(4));
        switch (scene.Pattern)
        {
            case Pattern.Striped:
                paint.StrokeWidth = step / 3;
                for (float x = -size; x < 2 * size; x += step) canvas.DrawLine(x, 0, x + size, size, paint);
                break;
            case Pattern.Dotted:
                for (float y = step / 2; y < size; y += step)
                    for (float x = step / 2; x < size; x += step) canvas.DrawCircle(x, y, step / 6, paint);
                break;
            case Pattern.Checkered:
                for (int r = 0; r * step < size; r++)
                    for (int c = 0; c * step < size; c++)
                        if ((r + c) % 2 == 0) canvas.DrawRect(c * step, r * step, step, step, paint);
                break;
        }
    }

    static void DrawObject(SKCanvas canvas, SceneObject o, int size, SKColor color)
    {
        float cx = o.X * size, cy = o.Y * size, r = o.Radius * size;
        using var paint = new SKPaint { Color = color, IsAntialias = true, Style = SKPaintStyle.Fill };
        using var outline = new SKPaint { Color = Shade(color, 0.55f), IsAntialias = true, Style = SKPaintStyle.Stroke, StrokeWidth = Math.Max(1, size / 96f) };
        canvas.Save();
        canvas.RotateDegrees(o.Rotation, cx, cy);
        switch (o.Shape)
        {
            case Shape.Circle:
                canvas.DrawCircle(cx, cy, r, paint);
                canvas.DrawCircle(cx, cy, r, outline);
                break;
            case Shape.Ring:
                paint.Style = SKPaintStyle.Stroke;
                paint.StrokeWidth = r * 0.45f;
                canvas.DrawCircle(cx, cy, r * 0.78f, paint);
                break;
            case Shape.Square:
                canvas.DrawRect(cx - r * 0.85f, cy - r * 0.85f, r * 1.7f, r * 1.7f, paint);
                canvas.DrawRect(cx - r * 0.85f, cy - r * 0.85f, r * 1.7f, r * 1.7f, outline);
                break;
            case Shape.Cross:
                canvas.DrawRect(cx - r, cy - r * 0.3f, 2 * r, r * 0.6f, paint);
                canvas.DrawRect(cx - r * 0.3f, cy - r, r * 0.6f, 2 * r, paint);
                break;
            default:
                using (var path = Polygon(o.Shape, cx, cy, r))
                {
                    canvas.DrawPath(path, paint);
                    canvas.DrawPath(path, outline);
                }
                break;
        }
        canvas.Restore();
    }

    static SKPath Polygon(Shape shape, float cx, float cy, float r)
    {
        var (corners, inner) = shape switch
        {
            Shape.Triangle => (3, 1f),
            Shape.Diamond => (4, 1f),
            Shape.Hexagon => (6, 1f),
            Shape.Star => (10, 0.45f),
            _ => throw new ArgumentOutOfRangeException(nameof(shape)),
        };
        using var path = new SKPathBuilder();
        for (int i = 0; i < corners; i++)
        {
            double angle = -Math.PI / 2 + 2 * Math.PI * i / corners;
            float radius = shape == Shape.Star && i % 2 == 1 ? r * inner : r;
            var p = new SKPoint(cx + radius * (float)Math.Cos(angle), cy + radius * (float)Math.Sin(angle));
            if (i == 0) path.MoveTo(p); else path.LineTo(p);
        }
        path.Close();
        return path.Detach();
    }

    static SKColor Jitter(SKColor c, Random rng, int amount) => new(
        (byte)Math.Clamp(c.Red + rng.Next(-amount, amount + 1), 0, 255),
        (byte)Math.Clamp(c.Green + rng.Next(-amount, amount + 1), 0, 255),
        (byte)Math.Clamp(c.Blue + rng.Next(-amount, amount + 1), 0, 255));

    static SKColor Shade(SKColor c, float f) => new(
        (byte)Math.Clamp(c.Red * f, 0, 255), (byte)Math.Clamp(c.Green * f, 0, 255), (byte)Math.Clamp(c.Blue * f, 0, 255));

    static void AddNoise(SKBitmap bitmap, Random rng, int amount)
    {
        var pixels = bitmap.GetPixelSpan();
        for (int i = 0; i < pixels.Length; i += 4)
            for (int c = 0; c < 3; c++)
                pixels[i + c] = (byte)Math.Clamp(pixels[i + c] + rng.Next(-amount, amount + 1), 0, 255);
    }
}
