using SkiaSharp;
using Unlearnable.Data.Synthetic;
using Unlearnable.Imaging;

namespace Unlearnable.Data.Tests;

/// <summary>
/// The encoder's passes decode an answer's coefficients themselves instead of writing and decoding a file; that is
/// only sound if the pixels are Skia's to the bit. Checked against Skia's decoding of the upload, of the noisy answer,
/// and after a pass that redid a third of the units, for each sampling taken and for partial units at the edges.
/// </summary>
public class TurboDecoderTests
{
    static byte[] Upload(int width, int height, int quality, string sampling)
    {
        if (sampling == "grey") return PhonePhoto.Jpeg(width, height, quality, seed: width + height, grey: true);   // one component
        using var photo = SafeImageDecoder.Decode(PhonePhoto.Jpeg(width, height, 100, seed: width + height));
        using var pixels = photo.PeekPixels();
        var downsample = sampling switch { "4:2:0" => SKJpegEncoderDownsample.Downsample420, "4:2:2" => SKJpegEncoderDownsample.Downsample422, _ => SKJpegEncoderDownsample.Downsample444 };
        using var data = pixels.Encode(new SKJpegEncoderOptions(quality, downsample, SKJpegEncoderAlphaOption.Ignore))!;
        return data.ToArray();
    }

    static void Noise(SKBitmap original, SKBitmap perturbed, int bound, int seed, bool[]? units = null, int mcuWidth = 1, int mcuHeight = 1, int columns = 1)
    {
        var random = new Random(seed);
        var o = original.GetPixelSpan();
        var p = perturbed.GetPixelSpan();
        for (int y = 0; y < original.Height; y++)
            for (int x = 0; x < original.Width; x++)
            {
                if (units is not null && !units[y / mcuHeight * columns + x / mcuWidth]) continue;
                for (int c = 0, i = (y * original.Width + x) * 4; c < 3; c++) p[i + c] = (byte)Math.Clamp(o[i + c] + random.Next(-bound, bound + 1), 0, 255);
            }
    }

    [Theory]
    [InlineData(333, 251, 90, "4:2:0")]   // partial units at the right and bottom edges
    [InlineData(640, 480, 75, "4:2:0")]
    [InlineData(203, 141, 85, "4:2:2")]
    [InlineData(97, 61, 95, "4:4:4")]
    [InlineData(5, 40, 100, "4:2:0")]     // chroma three samples wide, the narrowest taken; quality 100: every table entry 1
    [InlineData(48, 3, 50, "4:2:0")]      // chroma two rows high
    [InlineData(301, 199, 80, "grey")]
    public void DecodesCoefficientsAsSkiaDecodesTheFile(int width, int height, int quality, string sampling)
    {
        var upload = Upload(width, height, quality, sampling);
        using var original = SafeImageDecoder.Decode(upload);
        using var coder = JpegCoefficientNoise.Open(upload, original)!;
        using var decoded = new SKBitmap(original.Info);

        Assert.True(coder.TryDecode(decoded));
        Assert.True(original.GetPixelSpan().SequenceEqual(decoded.GetPixelSpan()), "the upload's own coefficients");

        using var perturbed = RgbaCopy.Of(original);
        Noise(original, perturbed, 8, seed: 1);
        coder.Quantise(perturbed);
        Assert.True(coder.TryDecode(decoded));
        using (var file = SafeImageDecoder.Decode(coder.Write()!))
        {
            Assert.True(file.GetPixelSpan().SequenceEqual(decoded.GetPixelSpan()), "the noisy answer");
            Assert.True(PixelDifference.LInfinity(original, file) > 0);
        }

        var units = new bool[coder.McuColumns * coder.McuRows];
        for (int i = 0; i < units.Length; i += 3) units[i] = true;
        Noise(original, perturbed, 5, seed: 2, units, coder.McuWidth, coder.McuHeight, coder.McuColumns);
        coder.Quantise(perturbed, units);
        Assert.True(coder.TryDecode(decoded, units));
        using (var file = SafeImageDecoder.Decode(coder.Write()!))
            Assert.True(file.GetPixelSpan().SequenceEqual(decoded.GetPixelSpan()), "after redoing a third of the units");
    }

    // Chroma two samples wide: Skia's decoding of it differs from the C code's, so the passes write and decode files,
    // and the answer still holds the bound.
    [Fact]
    public void AnUploadItCannotReproduceIsRefusedAndStillPublishedWithinTheBound()
    {
        var upload = Upload(4, 40, 90, "4:2:0");
        using var original = SafeImageDecoder.Decode(upload);
        using (var coder = JpegCoefficientNoise.Open(upload, original)!)
        using (var decoded = new SKBitmap(original.Info))
            Assert.False(coder.TryDecode(decoded));
        using var perturbed = RgbaCopy.Of(original);
        Noise(original, perturbed, 8, seed: 3);
        var published = BoundedEncoder.Encode(original, perturbed, new OutputEncoding(OutputFormat.Jpeg), 8, upload);
        Assert.Equal(OutputFormat.Jpeg, published.Format);
        using var file = SafeImageDecoder.Decode(published.Bytes);
        Assert.InRange(PixelDifference.LInfinity(original, file), 0, 8);
    }
}
