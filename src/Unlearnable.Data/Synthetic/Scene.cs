using SkiaSharp;

namespace Unlearnable.Data.Synthetic;

public enum Shape { Circle, Square, Triangle, Star, Diamond, Cross, Ring, Hexagon }
public enum Pattern { Plain, Striped, Dotted, Checkered }

public sealed record NamedColor(string Name, SKColor Color);

/// <summary>One object of a scene: what it is and where (centre and radius as fractions of the side).</summary>
public sealed record SceneObject(Shape Shape, NamedColor Color, bool Large, float X, float Y, float Radius, float Rotation)
{
    public string SizeWord => Large ? "large" : "small";

    /// <summary>Position in words from a 3×3 grid over the image.</summary>
    public string Position
    {
        get
        {
            string row = Y < 0.36f ? "top" : Y > 0.64f ? "bottom" : "";
            string col = X < 0.36f ? "left" : X > 0.64f ? "right" : "";
            return (row, col) switch { ("", "") => "center", ("", _) => col, (_, "") => row, _ => $"{row} {col}" };
        }
    }
}

public sealed record Scene(NamedColor Background, Pattern Pattern, IReadOnlyList<SceneObject> Objects);

public static class Palette
{
    public static readonly NamedColor[] Objects =
    [
        new("red", new SKColor(220, 30, 35)), new("green", new SKColor(40, 170, 60)), new("blue", new SKColor(35, 80, 220)),
        new("yellow", new SKColor(245, 215, 40)), new("purple", new SKColor(135, 50, 175)), new("orange", new SKColor(250, 135, 25)),
        new("white", new SKColor(245, 245, 245)), new("black", new SKColor(20, 20, 20)), new("pink", new SKColor(245, 130, 190)),
        new("brown", new SKColor(125, 75, 35)),
    ];

    public static readonly NamedColor[] Backgrounds =
    [
        new("gray", new SKColor(128, 128, 128)), new("beige", new SKColor(225, 210, 170)), new("navy", new SKColor(25, 35, 90)),
        new("teal", new SKColor(30, 130, 130)), new("light blue", new SKColor(160, 200, 240)), new("dark green", new SKColor(25, 80, 40)),
    ];
}
