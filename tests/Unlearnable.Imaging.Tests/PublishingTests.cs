using SkiaSharp;
using Unlearnable.Data.Synthetic;
using Unlearnable.Imaging;

namespace Unlearnable.Imaging.Tests;

/// <summary>The publishing side of the imaging layer: JPEG answers within the bound, grey kept grey, quality read back, shape limits.</summary>
public class PublishingTests
{
    // Noise like a mapped PGD result: plateaus at ±bound with smooth slopes between them.
    static SKBitmap AtTheBound(SKBitmap original, int bound)
    {
        var perturbed = original.Copy(SKColorType.Rgba8888);
        var p = perturbed.GetPixelSpan();
        for (int y = 0; y < original.Height; y++)
            for (int x = 0; x < original.Width; x++)
            {
                int d = (int)Math.Round(bound * Math.Clamp(3 * Math.Sin(x / 9.5) * Math.Sin(y / 9.5), -1, 1));
                for (int c = 0; c < 3; c++) { int i = (y * original.Width + x) * 4 + c; p[i] = (byte)Math.Clamp(p[i] + d, 0, 255); }
            }
        return perturbed;
    }

    // The encoder's later passes change the noise in a few coded units and re-quantise only those; the answer must be
    // the one a fresh start from the same noise gives. An odd size, so that edge units are partial.
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ReQuantisingOnlyTheChangedUnitsGivesTheAnswerAFreshStartGives(bool grey)
    {
        var upload = PhonePhoto.Jpeg(333, 251, 90, seed: 7, grey: grey);
        using var original = SafeImageDecoder.Decode(upload);
        using var perturbed = AtTheBound(original, 6);
        using var coder = JpegCoefficientNoise.Open(upload, original)!;
        coder.Quantize(perturbed);
        var before = coder.Write();

        var changed = new bool[coder.McuColumns * coder.McuRows];
        for (int i = 0; i < changed.Length; i += 3) changed[i] = true;
        Assert.Contains(true, changed[^coder.McuColumns..]);   // a unit of the partial bottom row among them
        var o = original.GetPixelSpan();
        var p = perturbed.GetPixelSpan();
        for (int y = 0; y < original.Height; y++)
            for (int x = 0; x < original.Width; x++)
                if (changed[y / coder.McuHeight * coder.McuColumns + x / coder.McuWidth])
                    for (int c = 0, i = (y * original.Width + x) * 4; c < 3; c++) p[i + c] = (byte)(o[i + c] + (p[i + c] - o[i + c]) / 2);
        coder.Quantize(perturbed, changed);
        var incremental = coder.Write();

        using var fresh = JpegCoefficientNoise.Open(upload, original)!;
        fresh.Quantize(perturbed);
        Assert.Equal(fresh.Write(), incremental);
        Assert.NotEqual(before, incremental);

    }

    // The answer's own writer (baseline, optimised Huffman codes) against LibJpeg.NET's writer of the same coefficients:
    // the same file, byte for byte, whatever the sampling, shape or quality, with and without noise added.
    [Theory]
    [InlineData(333, 251, 90, false, false)]   // 4:2:0, partial units at both edges
    [InlineData(640, 480, 75, true, false)]    // grey: one component, no interleaving
    [InlineData(97, 61, 95, false, true)]      // 4:4:4
    [InlineData(7, 5, 100, false, false)]      // smaller than one unit; quality 100: every table entry 1
    [InlineData(1200, 900, 60, false, false)]
    public void TheAnswerIsWrittenAsLibJpegWritesIt(int width, int height, int quality, bool grey, bool fullChroma)
    {
        byte[] upload;
        using (var photo = SafeImageDecoder.Decode(PhonePhoto.Jpeg(width, height, 100, seed: width, grey: grey)))
            upload = ImageEncoding.Jpeg(photo, quality, fullChroma);
        using var original = SafeImageDecoder.Decode(upload);
        using var coder = JpegCoefficientNoise.Open(upload, original)!;
        coder.Quantize(original);   // no noise: the upload's own coefficients
        Assert.Equal(coder.WriteWithLibJpeg(), coder.Write());
        using var perturbed = AtTheBound(original, 8);
        coder.Quantize(perturbed);
        var written = coder.Write()!;
        Assert.Equal(coder.WriteWithLibJpeg(), written);
        using var decoded = SafeImageDecoder.Decode(written);
        Assert.InRange(PixelDifference.LInfinity(original, decoded), 1, 20);   // the noise is there, quantised
    }

    // An upload made by LibJpeg.NET, for what Skia's encoder does not make: chroma on table 0 and luma on table 1 (so the
    // tables are defined out of component order), 16-bit tables.
    static byte[] LibJpegUpload(SKBitmap photo, int quality, bool forceBaseline = true, bool swapTables = false)
    {
        int width = photo.Width, height = photo.Height;
        var output = new MemoryStream();
        var compress = new BitMiracle.LibJpeg.Classic.jpeg_compress_struct();
        compress.jpeg_stdio_dest(output);
        (compress.Image_width, compress.Image_height, compress.Input_components, compress.In_color_space) = (width, height, 3, BitMiracle.LibJpeg.Classic.J_COLOR_SPACE.JCS_RGB);
        compress.jpeg_set_defaults();
        compress.jpeg_set_quality(quality, forceBaseline);
        if (swapTables)
            for (int c = 0; c < 3; c++) compress.Component_info[c].Quant_tbl_no = c == 0 ? 1 : 0;
        compress.jpeg_start_compress(true);
        var pixels = photo.GetPixelSpan();
        var rows = new byte[height][];
        for (int y = 0; y < height; y++)
        {
            rows[y] = new byte[3 * width];
            for (int x = 0; x < width; x++)
                for (int c = 0; c < 3; c++) rows[y][3 * x + c] = pixels[(y * width + x) * 4 + c];
        }
        compress.jpeg_write_scanlines(rows, height);
        compress.jpeg_finish_compress();
        return output.ToArray();
    }

    // LibJpeg.NET cannot make 4:2:2 or other samplings from pixels (its scaled DCTs are not implemented), so 4:2:2 comes from Skia.
    [Theory]
    [InlineData(false)]   // 4:2:2
    [InlineData(true)]    // 4:2:0, chroma on table 0 and luma on table 1
    public void OtherSamplingsAndTableOrdersAreWrittenAsLibJpegWritesThem(bool swapTables)
    {
        using var photo = SafeImageDecoder.Decode(PhonePhoto.Jpeg(203, 141, 100, seed: swapTables ? 3 : 4));
        byte[] upload;
        if (swapTables) upload = LibJpegUpload(photo, 85, swapTables: true);
        else
        {
            using var pixels = photo.PeekPixels();
            using var data = pixels.Encode(new SKJpegEncoderOptions(85, SKJpegEncoderDownsample.Downsample422, SKJpegEncoderAlphaOption.Ignore))!;
            upload = data.ToArray();
        }
        using var original = SafeImageDecoder.Decode(upload);
        using var perturbed = AtTheBound(original, 8);
        using var coder = JpegCoefficientNoise.Open(upload, original)!;
        Assert.Equal(swapTables ? (16, 16) : (16, 8), (coder.McuWidth, coder.McuHeight));
        coder.Quantize(perturbed);
        Assert.Equal(coder.WriteWithLibJpeg(), coder.Write());
        var published = BoundedEncoder.Encode(original, perturbed, new OutputEncoding(OutputFormat.Jpeg), 8, upload);
        using var decoded = SafeImageDecoder.Decode(published.Bytes);
        Assert.Equal(OutputFormat.Jpeg, published.Format);
        Assert.InRange(PixelDifference.LInfinity(original, decoded), 1, 8);
    }

    // Fibonacci counts make the deepest possible merge tree (one symbol more per level): 40 symbols reach 40 bits
    // before folding. Every symbol still gets a code of at most 16 bits, no code is a prefix of another, and
    // one code point stays free (no code of all ones).
    [Fact]
    public void HuffmanCodesStayWithin16BitsAndPrefixFreeForTheDeepestTree()
    {
        var frequencies = new long[256];
        long a = 1, b = 1;
        for (int s = 0; s < 40; s++, (a, b) = (b, a + b)) frequencies[s * 3] = a;
        var table = new HuffmanTable(frequencies);
        var coded = Enumerable.Range(0, 256).Where(s => table.Lengths[s] > 0).ToList();
        Assert.Equal(Enumerable.Range(0, 40).Select(s => s * 3), coded);
        Assert.All(coded, s => Assert.InRange(table.Lengths[s], 1, 16));
        Assert.True(coded.Sum(s => Math.Pow(2, -table.Lengths[s])) < 1);
        foreach (var x in coded)
            foreach (var y in coded.Where(y => y != x && table.Lengths[y] >= table.Lengths[x]))
                Assert.NotEqual(table.Codes[x], table.Codes[y] >> (table.Lengths[y] - table.Lengths[x]));
    }

    // Quality 3 without forcing baseline gives 16-bit table entries (an extended-sequential file), which baseline
    // cannot hold: the answer is then written by LibJpeg.NET, and still carries the noise.
    [Fact]
    public void AnUploadBaselineCannotHoldIsWrittenByLibJpeg()
    {
        using var photo = SafeImageDecoder.Decode(PhonePhoto.Jpeg(120, 90, 95, seed: 5));
        var upload = LibJpegUpload(photo, quality: 3, forceBaseline: false);
        Assert.Contains(JpegTables.Read(upload)!.Table(0)!, q => q > 255);

        using var original = SafeImageDecoder.Decode(upload);
        using var perturbed = AtTheBound(original, 60);   // tables this coarse round noise at ±8 away entirely
        using var coder = JpegCoefficientNoise.Open(upload, original)!;
        coder.Quantize(perturbed);
        var written = coder.Write()!;
        Assert.Equal(coder.WriteWithLibJpeg(), written);
        using var decoded = SafeImageDecoder.Decode(written);
        Assert.True(PixelDifference.LInfinity(original, decoded) > 0);
    }

    [Theory]
    [InlineData(92, false)]
    [InlineData(75, false)]
    [InlineData(90, true)]
    public void AJpegUploadKeepsItsTablesAndSizeAndDecodesWithinTheBound(int uploadQuality, bool grey)
    {
        const int bound = 8;
        var upload = PhonePhoto.Jpeg(1201, 899, uploadQuality, seed: uploadQuality, grey: grey);
        using var original = SafeImageDecoder.Decode(upload);
        using var perturbed = AtTheBound(original, bound);
        // Re-encoding the pixels at the upload's own quality overshoots the bound (the photo's grain is quantised again).
        using (var plain = SafeImageDecoder.Decode(ImageEncoding.Jpeg(perturbed, uploadQuality)))
            Assert.True(PixelDifference.LInfinity(original, plain) > bound + 2);

        var published = BoundedEncoder.Encode(original, perturbed, new OutputEncoding(OutputFormat.Jpeg), bound, upload);
        using var decoded = SafeImageDecoder.Decode(published.Bytes);
        Assert.Equal(OutputFormat.Jpeg, published.Format);
        Assert.Equal(published.LInfinity, PixelDifference.LInfinity(original, decoded));
        Assert.InRange(published.LInfinity, bound - 2, bound);
        Assert.InRange(published.JpegQuality, uploadQuality - 2, uploadQuality + 2);
        Assert.InRange((double)published.Bytes.Length / upload.Length, 0.8, 1.25);
        Assert.Equal(JpegTables.Read(upload)!.Table(0), JpegTables.Read(published.Bytes)!.Table(0));
    }

    // A smooth photo (the load tester's gradient, with channels at 0 and 255) and noise at the bound in each channel
    // independently: quantising the noise's chroma overshoots in many coded units. They keep scaled-down noise
    // instead of none (the rule before dropped it from every unit of this photo: PSNR infinite).
    [Fact]
    public void CodedUnitsThatOvershootKeepScaledNoiseInsteadOfNone()
    {
        const int bound = 8;
        using var gradient = new SKBitmap(512, 384);
        using (var canvas = new SKCanvas(gradient))
        using (var paint = new SKPaint { Shader = SKShader.CreateLinearGradient(new SKPoint(0, 0), new SKPoint(512, 512), [SKColors.Teal, SKColors.Gold], SKShaderTileMode.Clamp) })
            canvas.DrawRect(0, 0, 512, 384, paint);
        byte[] upload;
        using (var image = SKImage.FromBitmap(gradient)) upload = image.Encode(SKEncodedImageFormat.Jpeg, 90).ToArray();
        using var original = SafeImageDecoder.Decode(upload);
        using var perturbed = original.Copy(SKColorType.Rgba8888);
        var p = perturbed.GetPixelSpan();
        for (int y = 0; y < original.Height; y++)
            for (int x = 0; x < original.Width; x++)
                for (int c = 0; c < 3; c++)
                {
                    int i = (y * original.Width + x) * 4 + c;
                    p[i] = (byte)Math.Clamp(p[i] + Math.Round(bound * Math.Clamp(3 * Math.Sin(x / (5.0 + c) + c) * Math.Cos(y / (7.0 - c)), -1, 1)), 0, 255);
                }

        var published = BoundedEncoder.Encode(original, perturbed, new OutputEncoding(OutputFormat.Jpeg), bound, upload);
        using var decoded = SafeImageDecoder.Decode(published.Bytes);
        Assert.Equal(OutputFormat.Jpeg, published.Format);
        Assert.InRange(PixelDifference.LInfinity(original, decoded), bound - 2, bound);
        Assert.True(published.SilencedShare < 0.02, $"{published.SilencedShare:P1} of the coded units got no noise");
        Assert.True(published.Psnr < 42, $"PSNR {published.Psnr:F1} dB: most of the noise was dropped");
    }

    [Theory]
    [InlineData(75)]
    [InlineData(95)]
    public void AnAskedJpegQualityIsRaisedOnlyAsFarAsTheBoundNeeds(int quality)
    {
        const int bound = 8;
        var upload = PhonePhoto.Jpeg(800, 600, 92, seed: 9);
        using var original = SafeImageDecoder.Decode(upload);
        using var perturbed = AtTheBound(original, bound);
        var published = BoundedEncoder.Encode(original, perturbed, new OutputEncoding(OutputFormat.Jpeg, quality), bound, upload);
        using var decoded = SafeImageDecoder.Decode(published.Bytes);
        Assert.InRange(PixelDifference.LInfinity(original, decoded), 1, bound);
        Assert.Equal(published.LInfinity, PixelDifference.LInfinity(original, decoded));
        bool jpeg = published.Bytes[0] == 0xFF && published.Bytes[1] == 0xD8;
        Assert.Equal(published.Format == OutputFormat.Jpeg, jpeg);
        if (jpeg) Assert.InRange(published.JpegQuality, quality, 100);
    }

    [Fact]
    public void SsimIsOneForTheSameImageAndFallsWithTheNoise()
    {
        using var original = PhonePhoto.Render(200, 150, seed: 6);
        using var light = AtTheBound(original, 2);
        using var heavy = AtTheBound(original, 16);
        Assert.Equal(1.0, PixelDifference.Ssim(original, original), 6);
        double a = PixelDifference.Ssim(original, light), b = PixelDifference.Ssim(original, heavy);
        Assert.True(a < 1 && b < a && b > 0, $"SSIM {a:F3} at ±2, {b:F3} at ±16");
    }

    // The vectorised comparison against the definitions, on a size whose last pixels fall outside whole vectors, with
    // alpha differing (it must be ignored) and enough pixels to flush the 32-bit square sums more than once.
    [Theory]
    [InlineData(1031, 777)]
    [InlineData(3, 2)]
    public void LInfinityAndPsnrAreTheirDefinitions(int width, int height)
    {
        var random = new Random(width);
        using var a = new SKBitmap(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Unpremul));
        using var b = new SKBitmap(a.Info);
        random.NextBytes(a.GetPixelSpan());
        var pa = a.GetPixelSpan();
        var pb = b.GetPixelSpan();
        for (int i = 0; i < pa.Length; i++) pb[i] = (i & 3) == 3 ? (byte)(255 - pa[i]) : (byte)Math.Clamp(pa[i] + random.Next(-9, 10), 0, 255);
        pb[^2] = (byte)(pa[^2] < 128 ? 255 : 0);   // the largest difference in the very last pixel
        long squares = 0;
        int largest = 0;
        for (int i = 0; i < pa.Length; i++)
            if ((i & 3) != 3)
            {
                int d = Math.Abs(pa[i] - pb[i]);
                largest = Math.Max(largest, d);
                squares += d * d;
            }
        var (linf, psnr) = PixelDifference.Compare(a, b);
        Assert.Equal(largest, linf);
        Assert.Equal(10 * Math.Log10(255.0 * 255 / (squares / (width * height * 3.0))), psnr, 9);
    }

    [Fact]
    public void LosslessAnswersAreExactlyThePerturbedImage()
    {
        using var original = PhonePhoto.Render(300, 200, seed: 1);
        using var perturbed = AtTheBound(original, 8);
        foreach (var format in new[] { OutputFormat.Png, OutputFormat.WebpLossless })
        {
            var published = BoundedEncoder.Encode(original, perturbed, new OutputEncoding(format), 8);
            using var decoded = SafeImageDecoder.Decode(published.Bytes);
            Assert.Equal(0, PixelDifference.LInfinity(perturbed, decoded));
            Assert.Equal(8, published.LInfinity);
        }
    }

    // The right half erased (alpha 0) over a picture that is still there in the colour channels, as an editor leaves it.
    [Theory]
    [InlineData(OutputFormat.Png, false)]
    [InlineData(OutputFormat.Png, true)]
    [InlineData(OutputFormat.WebpLossless, false)]
    [InlineData(OutputFormat.WebpLossless, true)]
    public void TransparentPixelsStayTransparentAndWhatTheyHideIsNotPublished(OutputFormat format, bool grey)
    {
        using var original = SafeImageDecoder.Decode(PhonePhoto.Jpeg(160, 120, seed: 4, grey: grey));
        var o = original.GetPixelSpan();
        for (int y = 0; y < 120; y++)
            for (int x = 80; x < 160; x++) o[(y * 160 + x) * 4 + 3] = 0;
        using var perturbed = AtTheBound(original, 8);

        var published = BoundedEncoder.Encode(original, perturbed, new OutputEncoding(format), 8);

        using var decoded = SafeImageDecoder.Decode(published.Bytes);
        var d = decoded.GetPixelSpan();
        for (int y = 0; y < 120; y++)
            for (int x = 0; x < 160; x++)
            {
                int i = (y * 160 + x) * 4;
                Assert.Equal(x < 80 ? 255 : 0, d[i + 3]);
                if (x >= 80) Assert.True(d[i] == 0 && d[i + 1] == 0 && d[i + 2] == 0, $"hidden colour ({d[i]}, {d[i + 1]}, {d[i + 2]}) published at ({x}, {y})");
            }
        Assert.InRange(published.LInfinity, 1, 8);
    }

    [Theory]
    [InlineData(OutputFormat.Jpeg)]
    [InlineData(OutputFormat.Png)]
    public void GreyPhotosAreWrittenAsOneChannelAndStayGrey(OutputFormat format)
    {
        using var original = SafeImageDecoder.Decode(PhonePhoto.Jpeg(640, 480, seed: 2, grey: true));
        Assert.True(ImageEncoding.IsGrey(original));
        using var perturbed = AtTheBound(original, 8);
        var published = BoundedEncoder.Encode(original, perturbed, new OutputEncoding(format, 85), 8);
        using (var codec = SKCodec.Create(SKData.CreateCopy(published.Bytes)))
            Assert.Equal(SKColorType.Gray8, codec.Info.ColorType);
        using var decoded = SafeImageDecoder.Decode(published.Bytes);
        Assert.True(ImageEncoding.IsGrey(decoded));
        Assert.InRange(published.LInfinity, 1, 8);
    }

    [Theory]
    [InlineData(50)]
    [InlineData(75)]
    [InlineData(90)]
    [InlineData(95)]
    public void EstimatesTheQualityAJpegWasSavedAt(int quality)
    {
        using var photo = PhonePhoto.Render(64, 48);
        Assert.InRange(JpegTables.Read(ImageEncoding.Jpeg(photo, quality))!.Quality!.Value, quality - 2, quality + 2);
    }

    [Fact]
    public void QualityOfANonJpegIsUnknown()
    {
        using var photo = PhonePhoto.Render(64, 48);
        Assert.Null(JpegTables.Read(ImageEncoding.Png(photo)));
        Assert.Null(JpegTables.Read([0xFF, 0xD8, 0xFF, 0xDB, 0x00]));   // a DQT cut short
    }

    [Fact]
    public void AThinStripIsRefusedFromItsHeader()
    {
        using var strip = new SKBitmap(new SKImageInfo(12000, 1, SKColorType.Rgba8888, SKAlphaType.Unpremul));
        var png = ImageEncoding.Png(strip);
        var e = Assert.Throws<ImageRejectedException>(() => SafeImageDecoder.Decode(png));
        Assert.Contains("aspect ratio of 12000:1", e.Message);
        Assert.Contains("limit is 16:1", e.Message);
    }

    [Fact]
    public void LargePhotosAreCroppedThenDownscaledWithAveraging()
    {
        // Mid-grey under ±15 grain: an averaging downscale of 4000 pixels to 64 leaves almost none of it; point sampling would keep most.
        using var grain = new SKBitmap(new SKImageInfo(6000, 4000, SKColorType.Rgba8888, SKAlphaType.Unpremul));
        var pixels = grain.GetPixelSpan();
        var rng = new Random(5);
        for (int i = 0; i < pixels.Length; i += 4) { pixels[i] = pixels[i + 1] = pixels[i + 2] = (byte)(128 + rng.Next(-15, 16)); pixels[i + 3] = 255; }
        using var square = ClipPreprocess.ResizeAndCrop(grain, 64);
        Assert.Equal((64, 64), (square.Width, square.Height));
        var values = new List<double>();
        var p = square.GetPixelSpan();
        for (int i = 0; i < p.Length; i += 4) values.Add(p[i]);
        double mean = values.Average(), sd = Math.Sqrt(values.Average(v => (v - mean) * (v - mean)));
        Assert.InRange(mean, 126, 130);
        Assert.True(sd < 1.5, $"grain left after the downscale: sd {sd:F2}");
    }
}
