using System.Numerics;
using System.Runtime.InteropServices;
using SkiaSharp;

namespace Unlearnable.Imaging;

/// <summary>
/// What lies under fully transparent pixels is not part of the picture: often what the user erased. It is cleared
/// before anything is published, so it cannot be revealed, and so that encoders that rewrite it (lossless WebP does)
/// compare equal with the original there.
/// </summary>
public static class Transparency
{
    /// <summary>Sets the colour of every fully transparent pixel of an RGBA bitmap to black, in place.</summary>
    /// <returns>Whether the bitmap has any pixel that is not fully opaque.</returns>
    public static bool ClearHidden(SKBitmap rgba)
    {
        if (rgba.ColorType != SKColorType.Rgba8888) throw new ArgumentException("an RGBA bitmap is needed", nameof(rgba));
        var pixels = MemoryMarshal.Cast<byte, uint>(rgba.GetPixelSpan());   // little-endian RGBA: alpha is each word's top byte
        int first = FirstNotOpaque(pixels);
        if (first < 0) return false;
        for (int p = first; p < pixels.Length; p++)
            if (pixels[p] >> 24 == 0) pixels[p] = 0;
        return true;
    }

    // Most photos are opaque throughout: that is found a vector at a time.
    static int FirstNotOpaque(Span<uint> pixels)
    {
        var alpha = new Vector<uint>(0xFF000000u);
        int p = 0;
        for (; p <= pixels.Length - Vector<uint>.Count; p += Vector<uint>.Count)
            if (!Vector.EqualsAll(new Vector<uint>(pixels[p..]) & alpha, alpha)) break;
        for (; p < pixels.Length; p++)
            if (pixels[p] >> 24 != 255) return p;
        return -1;
    }
}
