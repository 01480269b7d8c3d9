using SkiaSharp;

namespace Unlearnable.Data.Synthetic.Faces;

/// <summary>
/// Draws a frontal face with Skia: background, hair behind, face oval with jaw, ears, eyes with
/// irises, brows, nose, mouth (its curve is the expression), front hair, accessory; then a
/// directional light gradient and sensor noise.
/// </summary>
public static class FaceRenderer
{
    public static SKBitmap Render(FaceIdentity id, FaceVariation v, int size, Random rng)
    {
        var bitmap = new SKBitmap(new SKImageInfo(size, size, SKColorType.Rgba8888, SKAlphaType.Unpremul));
        using (var canvas = new SKCanvas(bitmap))
        {
            canvas.Clear(v.Background);
            float r = size * 0.3f * v.Scale;   // face half-width in pixels
            canvas.Translate(size / 2f + v.ShiftX * size, size / 2f + v.ShiftY * size);
            canvas.RotateDegrees(v.Tilt);
            using var fill = new SKPaint { IsAntialias = true, Style = SKPaintStyle.Fill };

            if (id.Style is HairStyle.Long) { fill.Color = id.Hair; canvas.DrawRoundRect(-r * 1.15f, -r * id.Aspect * 1.05f, r * 2.3f, r * id.Aspect * 2.1f, r * 0.6f, r * 0.6f, fill); }
            fill.Color = id.Skin;
            canvas.DrawOval(-r * 1.02f, -r * 0.1f, r * 0.16f, r * 0.26f, fill);           // ears
            canvas.DrawOval(r * 1.02f, -r * 0.1f, r * 0.16f, r * 0.26f, fill);
            using (var face = new SKPathBuilder())
            {
                float h = r * id.Aspect;
                face.MoveTo(-r, -h * 0.2f);
                face.CubicTo(-r, -h * 1.15f, r, -h * 1.15f, r, -h * 0.2f);
                face.CubicTo(r, h * 0.55f, r * id.Jaw, h, 0, h);
                face.CubicTo(-r * id.Jaw, h, -r, h * 0.55f, -r, -h * 0.2f);
                using var path = face.Detach();
                canvas.DrawPath(path, fill);
            }
            DrawEyes(canvas, id, r, fill);
            DrawNoseAndMouth(canvas, id, v, r);
            DrawHairFront(canvas, id, r, fill);
            DrawAccessory(canvas, id, r);
        }
        Light(bitmap, v);
        Noise(bitmap, rng, v.Noise);
        return bitmap;
    }

    static void DrawEyes(SKCanvas canvas, FaceIdentity id, float r, SKPaint fill)
    {
        float y = id.EyeHeight * r * id.Aspect, e = id.EyeSize * r;
        using var brow = new SKPaint { IsAntialias = true, Style = SKPaintStyle.Stroke, StrokeWidth = Math.Max(1, id.BrowThickness * r), Color = Dark(id.Hair, 0.8f), StrokeCap = SKStrokeCap.Round };
        foreach (var side in new[] { -1f, 1f })
        {
            float x = side * id.EyeSpacing * r;
            fill.Color = SKColors.White;
            canvas.DrawOval(x, y, e * 1.5f, e, fill);
            fill.Color = id.Iris;
            canvas.DrawCircle(x, y, e * 0.7f, fill);
            fill.Color = SKColors.Black;
            canvas.DrawCircle(x, y, e * 0.3f, fill);
            canvas.DrawLine(x - e * 1.6f, y - e * 2f, x + e * 1.6f, y - e * 2.2f, brow);
        }
    }

    static void DrawNoseAndMouth(SKCanvas canvas, FaceIdentity id, FaceVariation v, float r)
    {
        float h = r * id.Aspect;
        using var line = new SKPaint { IsAntialias = true, Style = SKPaintStyle.Stroke, StrokeWidth = Math.Max(1, r * 0.04f), Color = Dark(id.Skin, 0.6f), StrokeCap = SKStrokeCap.Round };
        float top = id.EyeHeight * h + r * 0.1f, tip = top + id.NoseLength * h;
        canvas.DrawLine(0, top, -id.NoseWidth * r * 0.4f, tip, line);
        canvas.DrawLine(-id.NoseWidth * r * 0.4f, tip, id.NoseWidth * r, tip, line);
        line.Color = new SKColor(150, 50, 60);
        line.StrokeWidth = Math.Max(1, r * 0.06f);
        float y = id.MouthHeight * h, w = id.MouthWidth * r;
        using var mouth = new SKPathBuilder();
        mouth.MoveTo(-w, y);
        mouth.QuadTo(0, y + v.Smile * r * 0.25f, w, y);
        using var path = mouth.Detach();
        canvas.DrawPath(path, line);
    }

    static void DrawHairFront(SKCanvas canvas, FaceIdentity id, float r, SKPaint fill)
    {
        if (id.Style is HairStyle.Bald) return;
        float h = r * id.Aspect;
        fill.Color = id.Hair;
        using var hair = new SKPathBuilder();
        hair.MoveTo(-r * 1.05f, -h * 0.25f);
        hair.CubicTo(-r * 1.1f, -h * 1.25f, r * 1.1f, -h * 1.25f, r * 1.05f, -h * 0.25f);
        hair.CubicTo(r * 0.6f, -h * 0.7f, -r * 0.6f, -h * 0.7f, -r * 1.05f, -h * 0.25f);
        using var path = hair.Detach();
        canvas.DrawPath(path, fill);
        if (id.Style is HairStyle.Bun) canvas.DrawCircle(0, -h * 1.1f, r * 0.35f, fill);
    }

    static void DrawAccessory(SKCanvas canvas, FaceIdentity id, float r)
    {
        float h = r * id.Aspect, y = id.EyeHeight * h, e = id.EyeSize * r;
        using var paint = new SKPaint { IsAntialias = true, Style = SKPaintStyle.Stroke, StrokeWidth = Math.Max(1, r * 0.05f), Color = new SKColor(30, 30, 30) };
        switch (id.Accessory)
        {
            case Accessory.Glasses:
                foreach (var side in new[] { -1f, 1f }) canvas.DrawCircle(side * id.EyeSpacing * r, y, e * 2.1f, paint);
                canvas.DrawLine(-id.EyeSpacing * r + e * 2.1f, y, id.EyeSpacing * r - e * 2.1f, y, paint);
                break;
            case Accessory.Earrings:
                paint.Style = SKPaintStyle.Fill;
                paint.Color = new SKColor(230, 190, 40);
                foreach (var side in new[] { -1f, 1f }) canvas.DrawCircle(side * r * 1.05f, r * 0.2f, r * 0.08f, paint);
                break;
            case Accessory.Hat:
                paint.Style = SKPaintStyle.Fill;
                paint.Color = new SKColor(50, 60, 120);
                canvas.DrawRect(-r * 1.3f, -h * 1.0f, r * 2.6f, r * 0.18f, paint);
                canvas.DrawRoundRect(-r * 0.8f, -h * 1.5f, r * 1.6f, h * 0.55f, r * 0.2f, r * 0.2f, paint);
                break;
        }
    }

    static SKColor Dark(SKColor c, float f) => new((byte)(c.Red * f), (byte)(c.Green * f), (byte)(c.Blue * f));

    // A linear light gradient across the picture at the variation's angle.
    static void Light(SKBitmap bitmap, FaceVariation v)
    {
        var pixels = bitmap.GetPixelSpan();
        int size = bitmap.Width;
        double angle = v.LightAngle * Math.PI / 180, dx = Math.Cos(angle), dy = Math.Sin(angle);
        for (int y = 0; y < size; y++)
            for (int x = 0; x < size; x++)
            {
                double t = ((x - size / 2.0) * dx + (y - size / 2.0) * dy) / size;   // −0.7 … 0.7
                double gain = v.Light * (1 + 0.35 * t);
                int p = (y * size + x) * 4;
                for (int c = 0; c < 3; c++) pixels[p + c] = (byte)Math.Clamp(pixels[p + c] * gain, 0, 255);
            }
    }

    static void Noise(SKBitmap bitmap, Random rng, float amplitude)
    {
        var pixels = bitmap.GetPixelSpan();
        for (int i = 0; i < pixels.Length; i++)
            if (i % 4 != 3) pixels[i] = (byte)Math.Clamp(pixels[i] + (rng.NextDouble() * 2 - 1) * amplitude, 0, 255);
    }
}
