using SkiaSharp;

namespace Unlearnable.Data.Synthetic.Faces;

public enum HairStyle { Short, Long, Bald, Bun }
public enum Accessory { None, Glasses, Earrings, Hat }

/// <summary>
/// What makes one synthetic person recognisable, fixed for every photo of them: face shape,
/// skin and hair tone, hair style, eye, nose and mouth geometry, brows and an accessory.
/// Proportions are relative to the face's half-width.
/// </summary>
public sealed record FaceIdentity(
    float Aspect, float Jaw, SKColor Skin, SKColor Hair, HairStyle Style, SKColor Iris,
    float EyeSpacing, float EyeHeight, float EyeSize, float BrowThickness,
    float NoseLength, float NoseWidth, float MouthWidth, float MouthHeight, Accessory Accessory)
{
    static readonly SKColor[] Skins = [new(255, 224, 196), new(241, 194, 158), new(224, 172, 105), new(198, 134, 66), new(141, 85, 36), new(94, 58, 32)];
    static readonly SKColor[] Hairs = [new(20, 16, 14), new(70, 42, 22), new(140, 90, 40), new(222, 188, 110), new(170, 60, 30), new(190, 190, 190)];
    static readonly SKColor[] Irises = [new(60, 40, 20), new(40, 90, 160), new(60, 120, 60), new(110, 90, 50)];

    /// <summary>A random person: every parameter drawn independently from wide ranges.</summary>
    public static FaceIdentity Draw(Random rng)
    {
        float F(float lo, float hi) => lo + (float)rng.NextDouble() * (hi - lo);
        return new FaceIdentity(
            Aspect: F(1.1f, 1.45f), Jaw: F(0.55f, 0.95f),
            Skin: Skins[rng.Next(Skins.Length)], Hair: Hairs[rng.Next(Hairs.Length)], Style: (HairStyle)rng.Next(4), Iris: Irises[rng.Next(Irises.Length)],
            EyeSpacing: F(0.32f, 0.5f), EyeHeight: F(-0.3f, -0.1f), EyeSize: F(0.09f, 0.17f), BrowThickness: F(0.02f, 0.07f),
            NoseLength: F(0.18f, 0.38f), NoseWidth: F(0.08f, 0.2f), MouthWidth: F(0.25f, 0.5f), MouthHeight: F(0.42f, 0.62f),
            Accessory: rng.NextDouble() < 0.55 ? Accessory.None : (Accessory)(1 + rng.Next(3)));
    }
}

/// <summary>What changes between photos of the same person: pose, light, expression, camera noise, background.</summary>
public sealed record FaceVariation(float ShiftX, float ShiftY, float Scale, float Tilt, float Light, float LightAngle, float Smile, SKColor Background, float Noise)
{
    public static FaceVariation Draw(Random rng)
    {
        float F(float lo, float hi) => lo + (float)rng.NextDouble() * (hi - lo);
        var background = new SKColor((byte)rng.Next(40, 230), (byte)rng.Next(40, 230), (byte)rng.Next(40, 230));
        return new FaceVariation(F(-0.08f, 0.08f), F(-0.06f, 0.06f), F(0.88f, 1.08f), F(-12f, 12f), F(0.75f, 1.2f), F(0, 360), F(-0.6f, 1f), background, F(3, 9));
    }
}
