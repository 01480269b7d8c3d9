using System.Diagnostics;
using SkiaSharp;
using Unlearnable.Imaging;
using Xunit.Abstractions;

namespace Unlearnable.Imaging.Tests;

/// <summary>
/// Seeded, time-bounded fuzzing of the upload path: mutated JPEG (colour, grey, with an EXIF rotation), PNG (with
/// transparency), WebP and PGM files go through what the sidecar does with an upload — the header checks, the decoder,
/// then publishing with noise in the upload's own format (for a JPEG, its own coefficients). Each mutant must either be
/// refused with <see cref="ImageRejectedException"/> or come back as an image within the bound; any other exception is
/// a finding, reported with the seed, the round and the mutant's bytes written to a file to reproduce it.
/// </summary>
public class UploadFuzzTests(ITestOutputHelper output)
{
    // Tight enough that a mutated header cannot make one mutant decode for seconds; loose enough for every seed.
    static readonly ImageLimits Limits = new(1 << 20, 400_000, 2_000) { RefuseAnimation = true };
    const int Bound = 8;

    [Theory]
    [InlineData("jpeg", 1)]
    [InlineData("jpeg-grey", 2)]
    [InlineData("jpeg-exif-rotated", 3)]
    [InlineData("png-alpha", 4)]
    [InlineData("png-grey", 8)]
    [InlineData("webp", 5)]
    [InlineData("webp-lossy", 6)]
    [InlineData("pgm", 7)]
    public void MutatedUploadsAreRefusedOrPublishedWithinTheBound(string kind, int seed)
    {
        var original = Seed(kind);
        var rng = new Random(seed);
        var clock = Stopwatch.StartNew();
        int refused = 0, published = 0, round = 0;
        // At most 2,000 mutants or 8 seconds per kind: seeded, so a failure repeats (unless the time cap cuts it short).
        for (; round < 2_000 && clock.Elapsed < TimeSpan.FromSeconds(8); round++)
        {
            var mutant = Mutate(original, rng);
            if (kind.StartsWith("png")) FixPngChecksums(mutant);   // else nearly every mutant only tests the CRC check
            try
            {
                if (Upload(mutant)) published++;
                else refused++;
            }
            catch (Exception e)
            {
                var path = Path.Combine(Path.GetTempPath(), $"unlearnable-fuzz-{kind}-{seed}-{round}.bin");
                File.WriteAllBytes(path, mutant);
                Assert.Fail($"{kind}, seed {seed}, round {round}: {e.GetType().Name}: {e.Message} (the mutant is {path})\n{e.StackTrace}");
            }
        }
        output.WriteLine($"{kind}: {round} mutants in {clock.Elapsed.TotalSeconds:F1} s, {refused} refused, {published} published");
        Assert.True(published > 0 && refused > 0, $"{kind}: {published} published and {refused} refused; the mutations should give both");
    }

    /// <returns>False when the upload was refused; true when it was published within the bound.</returns>
    static bool Upload(byte[] upload)
    {
        SKBitmap decoded;
        try { decoded = SafeImageDecoder.Decode(upload, Limits, "the upload"); }
        catch (ImageRejectedException) { return false; }
        using (decoded)
        {
            using var perturbed = RgbaCopy.Of(decoded);
            var noise = new Random(decoded.Width * 31 + decoded.Height);
            var pixels = perturbed.GetPixelSpan();
            for (int i = 0; i < pixels.Length; i++)
                if (i % 4 != 3) pixels[i] = (byte)Math.Clamp(pixels[i] + noise.Next(-Bound, Bound + 1), 0, 255);
            var format = ImageFormats.Sniff(upload) switch
            {
                OutputFormat.Jpeg => OutputFormat.Jpeg,
                OutputFormat.WebpLossless => OutputFormat.WebpLossless,
                _ => OutputFormat.Png,
            };
            var answer = BoundedEncoder.Encode(decoded, perturbed, new OutputEncoding(format), Bound, upload);
            Assert.InRange(answer.LInfinity, 0, Bound);
            using var reread = SafeImageDecoder.Decode(answer.Bytes, ImageLimits.ForOwnOutput(decoded.Width, decoded.Height));
            Assert.Equal((decoded.Width, decoded.Height), (reread.Width, reread.Height));
            Assert.InRange(PixelDifference.LInfinity(decoded, reread), 0, Bound);
            return true;
        }
    }

    static readonly byte[] Interesting = [0x00, 0x01, 0x7F, 0x80, 0xFE, 0xFF];

    /// <summary>One to three of: bit flips, interesting bytes, large 16/32-bit values (lengths, sizes), cuts, repeats and deletions.</summary>
    static byte[] Mutate(byte[] original, Random rng)
    {
        var bytes = original.ToList();
        for (int m = rng.Next(1, 4); m > 0 && bytes.Count > 4; m--)
        {
            int at = rng.Next(bytes.Count);
            switch (rng.Next(7))
            {
                case 0: bytes[at] ^= (byte)(1 << rng.Next(8)); break;
                case 1: bytes[at] = Interesting[rng.Next(Interesting.Length)]; break;
                case 2:
                    var big = rng.Next(3) switch { 0 => 0xFFFFu, 1 => 0x7FFFFFFFu, _ => (uint)rng.Next(1, 70_000) };
                    for (int b = 0; b < (big > 0xFFFF ? 4 : 2) && at + b < bytes.Count; b++) bytes[at + b] = (byte)(big >> (8 * ((big > 0xFFFF ? 3 : 1) - b)));
                    break;
                case 3: bytes.RemoveRange(at, bytes.Count - at); break;                                   // truncated upload
                case 4: bytes.InsertRange(at, bytes.GetRange(at, Math.Min(rng.Next(1, 64), bytes.Count - at))); break;
                case 5: bytes.RemoveRange(at, Math.Min(rng.Next(1, 64), bytes.Count - at)); break;
                default: for (int b = 0; b < 16 && at + b < bytes.Count; b++) bytes[at + b] = (byte)rng.Next(256); break;
            }
        }
        return [.. bytes];
    }

    /// <summary>A small photo-like image (noise over gradients: real entropy) of an odd size, encoded as <paramref name="kind"/>.</summary>
    static byte[] Seed(string kind)
    {
        using var bitmap = new SKBitmap(new SKImageInfo(45, 37, SKColorType.Rgba8888, SKAlphaType.Unpremul));
        var rng = new Random(11);
        var pixels = bitmap.GetPixelSpan();
        bool grey = kind is "jpeg-grey" or "png-grey" or "pgm";
        for (int p = 0; p < pixels.Length / 4; p++)
        {
            int x = p % 45, y = p / 45;
            byte r = (byte)Math.Clamp(4 * x + rng.Next(-20, 21), 0, 255);
            (pixels[4 * p], pixels[4 * p + 1], pixels[4 * p + 2]) = grey ? (r, r, r) : (r, (byte)Math.Clamp(6 * y + rng.Next(-20, 21), 0, 255), (byte)rng.Next(256));
            pixels[4 * p + 3] = kind == "png-alpha" && x < 10 ? (byte)(x * 25) : (byte)255;
        }
        return kind switch
        {
            "jpeg" or "jpeg-grey" => ImageEncoding.Jpeg(bitmap, 85),
            "jpeg-exif-rotated" => WithExifOrientation(ImageEncoding.Jpeg(bitmap, 85), 6),
            "png-alpha" or "png-grey" => ImageEncoding.Png(bitmap),
            "webp" => ImageEncoding.WebpLossless(bitmap),
            "webp-lossy" => Lossy(bitmap),
            "pgm" => [.. "P5\n45 37\n255\n"u8.ToArray(), .. FirstChannel(bitmap)],
            _ => throw new ArgumentException(kind),
        };
    }

    /// <summary>Recomputes each chunk's CRC where the chunk lengths still lead through the file, so mutants reach the PNG decoder proper.</summary>
    static void FixPngChecksums(byte[] png)
    {
        long at = 8;
        while (at + 12 <= png.Length)
        {
            long length = System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(png.AsSpan((int)at));
            if (at + 12 + length > png.Length) return;
            uint crc = Crc32(png.AsSpan((int)at + 4, (int)length + 4));
            System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(png.AsSpan((int)(at + 8 + length)), crc);
            at += 12 + length;
        }
    }

    /// <summary>PNG's CRC-32 (reflected polynomial 0xEDB88320), bit by bit: the chunks are small.</summary>
    static uint Crc32(ReadOnlySpan<byte> data)
    {
        uint crc = 0xFFFFFFFF;
        foreach (byte b in data)
        {
            crc ^= b;
            for (int k = 0; k < 8; k++) crc = (crc & 1) != 0 ? (crc >> 1) ^ 0xEDB88320 : crc >> 1;
        }
        return ~crc;
    }

    static byte[] FirstChannel(SKBitmap bitmap)
    {
        var pixels = bitmap.GetPixelSpan();
        var grey = new byte[pixels.Length / 4];
        for (int p = 0; p < grey.Length; p++) grey[p] = pixels[4 * p];
        return grey;
    }

    static byte[] Lossy(SKBitmap bitmap)
    {
        using var image = SKImage.FromBitmap(bitmap);
        using var data = image.Encode(SKEncodedImageFormat.Webp, 80);
        return data.ToArray();
    }

    /// <summary>The JPEG with an APP1 EXIF segment after SOI whose one tag is the orientation (6: rotate 90° clockwise to view).</summary>
    static byte[] WithExifOrientation(byte[] jpeg, ushort orientation)
    {
        byte[] tiff = [(byte)'M', (byte)'M', 0, 42, 0, 0, 0, 8, 0, 1, 0x01, 0x12, 0, 3, 0, 0, 0, 1, (byte)(orientation >> 8), (byte)orientation, 0, 0, 0, 0, 0, 0];
        byte[] body = [.. "Exif\0\0"u8.ToArray(), .. tiff];
        int length = body.Length + 2;
        return [0xFF, 0xD8, 0xFF, 0xE1, (byte)(length >> 8), (byte)length, .. body, .. jpeg[2..]];
    }
}
