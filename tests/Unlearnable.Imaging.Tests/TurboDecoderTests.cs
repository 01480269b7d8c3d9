using SkiaSharp;
using Unlearnable.Data.Synthetic;
using Unlearnable.Imaging;

namespace Unlearnable.Imaging.Tests;

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
    [InlineData(1100, 70, 85, "4:2:0")]   // a run of units longer than one 1,024-pixel chunk
    [InlineData(1, 1, 90, "grey")]
    [InlineData(2, 3, 90, "4:4:4")]
    public void DecodesCoefficientsAsSkiaDecodesTheFile(int width, int height, int quality, string sampling)
    {
        var upload = Upload(width, height, quality, sampling);
        using var original = SafeImageDecoder.Decode(upload);
        using var coder = JpegCoefficientNoise.Open(upload, original)!;
        using var decoded = new SKBitmap(original.Info);
        if (!System.Runtime.Intrinsics.X86.Avx2.IsSupported)
        {
            Assert.False(coder.TryDecode(decoded));   // declined: the passes write and decode files
            return;
        }

        Assert.True(coder.TryDecode(decoded));
        Assert.True(original.GetPixelSpan().SequenceEqual(decoded.GetPixelSpan()), "the upload's own coefficients");

        using var perturbed = RgbaCopy.Of(original);
        Noise(original, perturbed, 8, seed: 1);
        coder.Quantize(perturbed);
        Assert.True(coder.TryDecode(decoded));
        using (var file = SafeImageDecoder.Decode(coder.Write()!))
        {
            Assert.True(file.GetPixelSpan().SequenceEqual(decoded.GetPixelSpan()), "the noisy answer");
            Assert.True(PixelDifference.LInfinity(original, file) > 0);
        }

        var units = new bool[coder.McuColumns * coder.McuRows];
        for (int i = 0; i < units.Length; i += 3) units[i] = true;
        Noise(original, perturbed, 5, seed: 2, units, coder.McuWidth, coder.McuHeight, coder.McuColumns);
        coder.Quantize(perturbed, units);
        Assert.True(coder.TryDecode(decoded, units));
        using (var file = SafeImageDecoder.Decode(coder.Write()!))
            Assert.True(file.GetPixelSpan().SequenceEqual(decoded.GetPixelSpan()), "after redoing a third of the units");
    }

    // Coefficients no photo has (every one ±1023 at quantiser 255) overflow the IDCT's 32 bits, so the reconstruction
    // differs from Skia's decoding; the encoder notices when it compares the written file, and the answer still holds
    // the bound.
    [Fact]
    public void AReconstructionThatDiffersFromTheFileIsNotTrusted()
    {
        var upload = Extreme(Upload(48, 32, 1, "4:2:0"));
        using var original = SafeImageDecoder.Decode(upload);
        using (var coder = JpegCoefficientNoise.Open(upload, original)!)
        using (var decoded = new SKBitmap(original.Info))
            if (coder.TryDecode(decoded))   // only with AVX2
                Assert.False(original.GetPixelSpan().SequenceEqual(decoded.GetPixelSpan()));
        using var perturbed = RgbaCopy.Of(original);
        Noise(original, perturbed, 8, seed: 4);
        var published = BoundedEncoder.Encode(original, perturbed, new OutputEncoding(OutputFormat.Jpeg), 8, upload);
        using var file = SafeImageDecoder.Decode(published.Bytes);
        Assert.InRange(PixelDifference.LInfinity(original, file), 0, 8);
        Assert.Equal(published.LInfinity, PixelDifference.LInfinity(original, file));
    }

    // The same file with every luma coefficient set to ±1023 in a checkerboard of signs (quality 1: every table entry 255).
    static byte[] Extreme(byte[] jpeg)
    {
        var source = new BitMiracle.LibJpeg.Classic.jpeg_decompress_struct();
        source.jpeg_stdio_src(new MemoryStream(jpeg));
        source.jpeg_read_header(true);
        var coefficients = source.jpeg_read_coefficients();
        var luma = source.Comp_info[0];
        int high = (source.Image_height + 7) / 8;   // luma is at full resolution
        var rows = coefficients[0].Access(0, high);
        for (int y = 0; y < high; y++)
            for (int x = 0; x < luma.Width_in_blocks; x++)
                for (int k = 0; k < 64; k++) rows[y][x][k] = (short)((k + x + y) % 2 == 0 ? 1023 : -1023);
        var output = new MemoryStream();
        var target = new BitMiracle.LibJpeg.Classic.jpeg_compress_struct();
        target.jpeg_stdio_dest(output);
        source.jpeg_copy_critical_parameters(target);
        target.jpeg_write_coefficients(coefficients);
        target.jpeg_finish_compress();
        return output.ToArray();
    }

    // Chroma two samples wide: libjpeg-turbo upsamples it without the triangle filter, which this does not reproduce,
    // so the passes write and decode files, and the answer still holds the bound.
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
