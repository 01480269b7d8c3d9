using SkiaSharp;

namespace Unlearnable.Sidecar.Tests;

/// <summary>Inputs the tests send: real encodes from Skia, plus hand-made EXIF and broken files.</summary>
public static class TestImages
{
    /// <summary>A w×h picture with structure (gradient and shapes), so noise and orientation are visible.</summary>
    public static SKBitmap Picture(int w, int h, SKColorType type = SKColorType.Rgba8888, SKAlphaType alpha = SKAlphaType.Opaque)
    {
        var bitmap = new SKBitmap(new SKImageInfo(w, h, type, alpha));
        using var canvas = new SKCanvas(bitmap);
        using var gradient = new SKPaint { Shader = SKShader.CreateLinearGradient(new SKPoint(0, 0), new SKPoint(w, h), [SKColors.SkyBlue, SKColors.Orange], SKShaderTileMode.Clamp) };
        canvas.DrawRect(0, 0, w, h, gradient);
        using var red = new SKPaint { Color = SKColors.Red, IsAntialias = true };
        canvas.DrawCircle(w * 0.3f, h * 0.4f, Math.Min(w, h) * 0.2f, red);
        using var green = new SKPaint { Color = SKColors.DarkGreen };
        canvas.DrawRect(w * 0.6f, h * 0.1f, w * 0.3f, h * 0.3f, green);
        return bitmap;
    }

    public static byte[] Encode(SKBitmap bitmap, SKEncodedImageFormat format, int quality = 95)
    {
        using var image = SKImage.FromBitmap(bitmap);
        using var data = image.Encode(format, quality);
        return data.ToArray();
    }

    public static byte[] Jpeg(int w, int h) { using var b = Picture(w, h); return Encode(b, SKEncodedImageFormat.Jpeg); }
    public static byte[] Png(int w, int h) { using var b = Picture(w, h); return Encode(b, SKEncodedImageFormat.Png); }

    /// <summary>A <see cref="Picture"/> with sensor-like grain (seeded), as a JPEG at quality 95 (about 0.7 bytes a pixel).</summary>
    public static byte[] GrainyJpeg(int w, int h, int seed)
    {
        using var bitmap = Picture(w, h);
        var rng = new Random(seed);
        var pixels = bitmap.GetPixelSpan();
        for (int i = 0; i < pixels.Length; i++)
            if (i % 4 != 3) pixels[i] = (byte)Math.Clamp(pixels[i] + rng.Next(-40, 41), 0, 255);
        return Encode(bitmap, SKEncodedImageFormat.Jpeg);
    }

    /// <summary>
    /// A JPEG with an EXIF APP1 segment: Orientation = 6 (rotate 90° clockwise to view) and a GPS
    /// IFD holding a latitude reference, the metadata a protected image must not carry on.
    /// </summary>
    public static byte[] JpegWithExif(int w, int h)
    {
        var jpeg = Jpeg(w, h);
        var tiff = new List<byte>();
        tiff.AddRange("II*\0"u8.ToArray());
        tiff.AddRange(BitConverter.GetBytes(8));                        // IFD0 at offset 8
        tiff.AddRange(BitConverter.GetBytes((ushort)2));                // two entries
        tiff.AddRange(Entry(0x0112, 3, 1, 6));                          // Orientation = 6
        tiff.AddRange(Entry(0x8825, 4, 1, 8 + 2 + 2 * 12 + 4));         // GPS IFD pointer
        tiff.AddRange(BitConverter.GetBytes(0));                        // no IFD1
        tiff.AddRange(BitConverter.GetBytes((ushort)1));                // GPS IFD: one entry
        tiff.AddRange(Entry(0x0001, 2, 2, 'N'));                        // GPSLatitudeRef = "N"
        tiff.AddRange(BitConverter.GetBytes(0));
        var payload = "Exif\0\0"u8.ToArray().Concat(tiff).ToArray();
        int length = payload.Length + 2;
        var app1 = new byte[] { 0xFF, 0xE1, (byte)(length >> 8), (byte)length }.Concat(payload);
        return jpeg.Take(2).Concat(app1).Concat(jpeg.Skip(2)).ToArray();

        static byte[] Entry(ushort tag, ushort type, int count, int value) =>
            BitConverter.GetBytes(tag).Concat(BitConverter.GetBytes(type)).Concat(BitConverter.GetBytes(count)).Concat(BitConverter.GetBytes(value)).ToArray();
    }

    /// <summary>A valid PNG whose IHDR claims width × height, followed by one small IDAT: a decompression bomb's header.</summary>
    public static byte[] PngHeaderClaiming(int width, int height)
    {
        var header = BigEndian(width).Concat(BigEndian(height)).Concat(new byte[] { 8, 2, 0, 0, 0 }).ToArray();   // 8-bit RGB
        using var zlib = new MemoryStream();
        using (var z = new System.IO.Compression.ZLibStream(zlib, System.IO.Compression.CompressionLevel.Optimal, leaveOpen: true)) z.Write(new byte[4096]);
        return new byte[] { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A }
            .Concat(Chunk("IHDR", header)).Concat(Chunk("IDAT", zlib.ToArray())).Concat(Chunk("IEND", [])).ToArray();

        static byte[] Chunk(string type, byte[] data)
        {
            var typed = System.Text.Encoding.ASCII.GetBytes(type).Concat(data).ToArray();
            return BigEndian(data.Length).Concat(typed).Concat(BigEndian((int)Crc32(typed))).ToArray();
        }
    }

    static byte[] BigEndian(int v) => [(byte)(v >> 24), (byte)(v >> 16), (byte)(v >> 8), (byte)v];

    /// <summary>PNG's chunk CRC (CRC-32, polynomial 0xEDB88320).</summary>
    static uint Crc32(byte[] data)
    {
        uint crc = 0xFFFFFFFF;
        foreach (var b in data)
        {
            crc ^= b;
            for (int k = 0; k < 8; k++) crc = (crc & 1) != 0 ? (crc >> 1) ^ 0xEDB88320 : crc >> 1;
        }
        return ~crc;
    }
}
