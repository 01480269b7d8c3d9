using System.Buffers.Binary;
using SkiaSharp;
using Unlearnable.Imaging;

namespace Unlearnable.Imaging.Tests;

public class SafeImageDecoderTests
{
    [Fact]
    public void DecodesPngAndJpegToRgba()
    {
        using var png = SafeImageDecoder.Decode(TestImages.Png(40, 30, new SKColor(10, 200, 30)));
        Assert.Equal((40, 30), (png.Width, png.Height));
        Assert.Equal(new SKColor(10, 200, 30), png.GetPixel(5, 5));
        using var jpeg = SafeImageDecoder.Decode(TestImages.Jpeg(33, 17, SKColors.Blue));
        Assert.Equal((33, 17), (jpeg.Width, jpeg.Height));
    }

    [Fact]
    public void RejectsEmptyRandomAndTruncatedBytes()
    {
        Assert.Contains("empty", Assert.Throws<ImageRejectedException>(() => SafeImageDecoder.Decode([])).Message);
        var random = new byte[4096];
        new Random(1).NextBytes(random);
        Assert.Contains("not a recognised image", Assert.Throws<ImageRejectedException>(() => SafeImageDecoder.Decode(random)).Message);
        var png = TestImages.Png(64, 64, SKColors.Red);
        var truncated = png[..(png.Length / 2)];
        Assert.Throws<ImageRejectedException>(() => SafeImageDecoder.Decode(truncated));
    }

    [Fact]
    public void RejectsOversizedBytesBeforeDecoding()
    {
        var png = TestImages.Png(64, 64, SKColors.Red);
        var e = Assert.Throws<ImageRejectedException>(() => SafeImageDecoder.Decode(png, new ImageLimits(MaxBytes: 100)));
        Assert.Contains("limit is 100", e.Message);
    }

    [Fact]
    public void RejectsHeaderClaimingHugeDimensionsWithoutDecoding()
    {
        // A valid PNG whose IHDR says 50,000 × 50,000: refused from the header alone.
        var png = TestImages.Png(8, 8, SKColors.Red);
        BinaryPrimitives.WriteUInt32BigEndian(png.AsSpan(16), 50_000);
        BinaryPrimitives.WriteUInt32BigEndian(png.AsSpan(20), 50_000);
        BinaryPrimitives.WriteUInt32BigEndian(png.AsSpan(29), Crc32(png.AsSpan(12, 17)));
        var e = Assert.Throws<ImageRejectedException>(() => SafeImageDecoder.Decode(png));
        Assert.Contains("50000x50000", e.Message);
    }

    [Fact]
    public void DecodesBinaryAndAsciiPgm()
    {
        var header = "P5\n# a comment\n3 2\n255\n"u8.ToArray();
        using var binary = SafeImageDecoder.Decode([.. header, 0, 50, 100, 150, 200, 255]);
        Assert.Equal((3, 2), (binary.Width, binary.Height));
        Assert.Equal(new SKColor(150, 150, 150), binary.GetPixel(0, 1));
        using var ascii = SafeImageDecoder.Decode("P2\n2 1\n15\n0 15\n"u8.ToArray());
        Assert.Equal(new SKColor(255, 255, 255), ascii.GetPixel(1, 0));
        Assert.Throws<ImageRejectedException>(() => SafeImageDecoder.Decode([.. header, 0, 50]));
    }

    // PNG chunk CRC (ISO 3309 / ITU-T V.42), so the forged header is otherwise valid.
    static uint Crc32(ReadOnlySpan<byte> data)
    {
        uint crc = 0xFFFFFFFF;
        foreach (var b in data)
        {
            crc ^= b;
            for (int k = 0; k < 8; k++) crc = (crc & 1) != 0 ? 0xEDB88320 ^ (crc >> 1) : crc >> 1;
        }
        return ~crc;
    }
}
