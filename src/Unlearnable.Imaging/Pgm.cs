using SkiaSharp;

namespace Unlearnable.Imaging;

/// <summary>
/// Netpbm greyscale (P5 binary, P2 ASCII) — the format of classic face sets such as ORL — which
/// Skia does not read. Header values are checked against the limits before pixels are read.
/// </summary>
public static class Pgm
{
    public static bool Looks(byte[] bytes) => bytes.Length > 2 && bytes[0] == 'P' && (bytes[1] == '5' || bytes[1] == '2') && char.IsWhiteSpace((char)bytes[2]);

    public static SKBitmap Decode(byte[] bytes, ImageLimits limits, string what)
    {
        int pos = 2;
        int width = ReadNumber(bytes, ref pos, what), height = ReadNumber(bytes, ref pos, what), max = ReadNumber(bytes, ref pos, what);
        if (width <= 0 || height <= 0 || max is <= 0 or > 65535) throw new ImageRejectedException($"{what} has an invalid PGM header ({width}x{height}, max {max}).");
        limits.CheckDimensions(width, height, what);
        bool binary = bytes[1] == '5';
        int bytesPerSample = max > 255 ? 2 : 1;
        pos++; // the single whitespace after maxval
        if (binary && bytes.Length - pos < (long)width * height * bytesPerSample)
            throw new ImageRejectedException($"{what} is truncated: the PGM data ends before the image does.");

        var bitmap = new SKBitmap(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Unpremul));
        var pixels = bitmap.GetPixelSpan();
        for (int i = 0; i < width * height; i++)
        {
            int sample = binary
                ? bytesPerSample == 1 ? bytes[pos + i] : (bytes[pos + 2 * i] << 8) | bytes[pos + 2 * i + 1]
                : ReadNumber(bytes, ref pos, what);
            byte v = (byte)Math.Clamp(sample * 255 / max, 0, 255);
            pixels[i * 4] = pixels[i * 4 + 1] = pixels[i * 4 + 2] = v;
            pixels[i * 4 + 3] = 255;
        }
        return bitmap;
    }

    static int ReadNumber(byte[] bytes, ref int pos, string what)
    {
        while (pos < bytes.Length && (char.IsWhiteSpace((char)bytes[pos]) || bytes[pos] == '#'))
        {
            if (bytes[pos] == '#') while (pos < bytes.Length && bytes[pos] != '\n') pos++;
            else pos++;
        }
        long value = 0;
        int start = pos;
        while (pos < bytes.Length && bytes[pos] is >= (byte)'0' and <= (byte)'9' && value < int.MaxValue) value = value * 10 + (bytes[pos++] - '0');
        if (pos == start || value >= int.MaxValue) throw new ImageRejectedException($"{what} is truncated or has a malformed PGM header.");
        return (int)value;
    }
}
