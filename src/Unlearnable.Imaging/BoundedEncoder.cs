using System.Runtime.Intrinsics;
using SkiaSharp;

namespace Unlearnable.Imaging;

/// <summary>
/// How to write an answer: a format and, for JPEG, a quality; null keeps a JPEG upload's own
/// tables (or the quality it was saved at), else <see cref="DefaultJpegQuality"/>.
/// </summary>
public sealed record OutputEncoding(OutputFormat Format, int? JpegQuality = null)
{
    public const int DefaultJpegQuality = 90;
}

/// <summary>
/// What was published and how far its decoded pixels are from the original's; <see cref="SilencedShare"/> is
/// the share of the image's coded units that were given no noise so that a JPEG answer could hold the bound.
/// </summary>
public sealed record PublishedImage(byte[] Bytes, OutputFormat Format, int JpegQuality, int LInfinity, double Psnr, double SilencedShare = 0);

/// <summary>
/// Encodes a perturbed image so that its <em>decoded</em> pixels stay within a bound of the
/// original's, and measures that on the decoded bytes. Lossless formats hold it by construction
/// (checked). A JPEG upload answered as JPEG at its own quality keeps its coefficients and gets
/// the noise's added (<see cref="JpegCoefficientNoise"/>): no second loss, about the same size.
/// Otherwise the pixels are encoded. Either way, JPEG's quantisation moves values by a few levels,
/// so each pass decodes the answer: on the coefficient path the noise is scaled down in the coded
/// units that overshot, and units that still overshoot then get no noise, which always settles it;
/// on the pixel path every channel value outside the bound is pulled back by its excess plus a
/// margin, then full chroma and higher qualities are tried, and as a last resort the answer is a
/// lossless PNG (the result says which). Works in place on the perturbed image: besides it and the
/// original, one decoded copy at a time on the pixel path (and the noise as mapped, to restart each
/// setting from); on the coefficient path the reconstruction and the coder's sample planes (1.5–3 bytes
/// a pixel), which are let go before the written file is decoded, so that at most two RGBA copies are
/// held beside the original and the perturbed image.
/// </summary>
public static class BoundedEncoder
{
    const int PassesPerSetting = 3;

    /// <param name="original">The upload as decoded, RGBA; the colour under its fully transparent pixels is cleared.</param>
    /// <param name="perturbed">Same size, RGBA; consumed (JPEG corrections are made in it).</param>
    /// <param name="bound">Largest allowed per-channel difference of the decoded answer from the original, 1/255 units.</param>
    /// <param name="upload">The upload's bytes, when it was a file this process decoded (a JPEG can then keep its coefficients).</param>
    public static PublishedImage Encode(SKBitmap original, SKBitmap perturbed, OutputEncoding encoding, int bound, byte[]? upload = null)
    {
        if (original.ColorType != SKColorType.Rgba8888 || perturbed.ColorType != SKColorType.Rgba8888)
            throw new ArgumentException("the original and the perturbed image must both be RGBA");
        if (original.Width != perturbed.Width || original.Height != perturbed.Height) throw new ArgumentException("the original and the perturbed image differ in size");
        Transparency.ClearHidden(original);   // in both: what is under fully transparent pixels is neither published nor compared
        Transparency.ClearHidden(perturbed);
        if (encoding.Format != OutputFormat.Jpeg) return Lossless(original, perturbed, encoding.Format, bound);

        var tables = upload is null ? null : JpegTables.Read(upload);
        int quality = encoding.JpegQuality ?? Math.Clamp(tables?.Quality ?? OutputEncoding.DefaultJpegQuality, 50, 95);
        // Headroom for quantisation where the noise sits at the bound: coarser tables move values further.
        Project(original, perturbed, bound - Math.Min(bound / 2, quality >= 88 ? 1 : quality >= 70 ? 2 : 3));
        if (encoding.JpegQuality is null && tables?.Quality is { } own && StoredUpright(upload!)
            && KeepingCoefficients(upload!, original, perturbed, bound, own) is { } kept)
            return kept;

        // Each setting starts again from the noise as mapped: corrections made for one quantiser misguide another.
        using var target = RgbaCopy.Of(perturbed);
        foreach (var (q, fullChroma) in JpegSettings(quality))
        {
            target.CopyTo(perturbed);
            for (int pass = 0; pass < (q == quality || q == 100 ? PassesPerSetting : PassesPerSetting - 1); pass++)
                if (Check(ImageEncoding.Jpeg(perturbed, q, fullChroma), original, perturbed, bound, pass, OutputFormat.Jpeg, q) is { } published)
                    return published;
        }
        Project(original, perturbed, bound);
        return Lossless(original, perturbed, OutputFormat.Png, bound);
    }

    // The upload's coefficients plus the noise's. Quantising the noise's coefficients moves a few values past the bound
    // (mostly blue: it carries 1.77 × the Cb error). Each pass decodes the answer and scales the noise down in the coded
    // units that overshot, in proportion to how far; units that still overshoot after that get no noise: their
    // coefficients are then the upload's own and decode to the original exactly, so the passes end. Each change
    // re-quantises only the units it touched. Where the file's sampling allows, the passes decode the coefficients as
    // Skia's decoder would (TurboDecoder: the changed units only, no file written), and the answer is written and
    // decoded once, at the end; should that decoding differ, the passes go on from the file's pixels.
    static PublishedImage? KeepingCoefficients(byte[] upload, SKBitmap original, SKBitmap perturbed, int bound, int quality)
    {
        using var coder = JpegCoefficientNoise.Open(upload, original);
        if (coder is null) return null;
        coder.Quantize(perturbed);
        SKBitmap? reconstructed = new(original.Info), file = null;
        if (!coder.TryDecode(reconstructed)) DropReconstruction();
        byte[]? bytes = null;
        try
        {
            bool[]? silenced = null;
            for (int pass = 0; pass < 2 * PassesPerSetting; pass++)
            {
                if (reconstructed is null && !WriteAndDecode()) return null;
                var decoded = reconstructed ?? file!;
                var largest = UnitMaxima(original, decoded, coder);
                if (largest.Max() <= bound && reconstructed is not null)
                {
                    // Settled: written and decoded once, and the decoder's pixels must be the reconstruction's.
                    coder.ReleaseDecoder();
                    if (!WriteAndDecode()) return null;
                    if (!file!.GetPixelSpan().SequenceEqual(reconstructed.GetPixelSpan()))
                    {
                        DropReconstruction();
                        largest = UnitMaxima(original, decoded = file, coder);
                    }
                }
                if (largest.Max() <= bound)
                {
                    var (linf, psnr) = PixelDifference.Compare(original, file!);
                    return new PublishedImage(bytes!, OutputFormat.Jpeg, quality, linf, psnr, silenced is null ? 0 : (double)silenced.Count(s => s) / silenced.Length);
                }
                var changed = pass < ShrinkingPasses ? Shrink(original, perturbed, largest, bound, coder) : silenced = Silence(original, perturbed, decoded, bound, coder, silenced);
                coder.Quantize(perturbed, changed);
                if (reconstructed is not null) coder.TryDecode(reconstructed, changed);
            }
            return null;
        }
        finally
        {
            reconstructed?.Dispose();
            file?.Dispose();
        }

        bool WriteAndDecode()
        {
            if ((bytes = coder.Write()) is null) return false;
            file?.Dispose();
            file = Decode(bytes, original);
            return true;
        }

        void DropReconstruction()
        {
            reconstructed!.Dispose();
            reconstructed = null;
        }
    }

    const int ShrinkingPasses = 2;
    // Room a scaled unit leaves for the quantisation error, which does not shrink with the noise. Measured on MEM's noise
    // (a 512 px gradient, a 1 MP grainy photo): 3 levels settles nearly every unit in one pass, 1 level needed two or
    // three. Pulling single values back instead (the rule before) left 35–41 % of those photos' units with no noise.
    const float Margin = 3;

    // Each coded unit's largest difference of the decoded answer from the original, over colour values, 32 bytes at a time.
    static int[] UnitMaxima(SKBitmap original, SKBitmap decoded, JpegCoefficientNoise units)
    {
        int width = original.Width, height = original.Height, mcuWidth = units.McuWidth, mcuHeight = units.McuHeight, columns = units.McuColumns;
        var largest = new int[columns * units.McuRows];
        var o = original.GetPixelSpan();
        var d = decoded.GetPixelSpan();
        var colour = Vector256.Create(0x00FFFFFFu).AsByte();   // alpha bytes masked out
        bool wide = Vector256.IsHardwareAccelerated;
        for (int row = 0; row < units.McuRows; row++)
            for (int column = 0; column < columns; column++)
            {
                int x0 = column * mcuWidth, x1 = Math.Min(width, x0 + mcuWidth), most = 0;
                var widest = Vector256<byte>.Zero;
                for (int y = row * mcuHeight; y < Math.Min(height, (row + 1) * mcuHeight); y++)
                {
                    int i = (y * width + x0) * 4, end = (y * width + x1) * 4;
                    for (; wide && end - i >= 32; i += 32)
                    {
                        var a = Vector256.Create(o.Slice(i, 32));
                        var b = Vector256.Create(d.Slice(i, 32));
                        widest = Vector256.Max(widest, (Vector256.Max(a, b) - Vector256.Min(a, b)) & colour);
                    }
                    for (; i < end; i++)
                        if ((i & 3) != 3) most = Math.Max(most, Math.Abs(o[i] - d[i]));
                }
                for (int k = 0; k < 32; k++) most = Math.Max(most, widest.GetElement(k));
                largest[row * columns + column] = most;
            }
        return largest;
    }

    // In each coded unit whose largest difference is past the bound, scales the noise by (bound − Margin) / that difference.
    // Returns the units it scaled.
    static bool[] Shrink(SKBitmap original, SKBitmap perturbed, int[] largest, int bound, JpegCoefficientNoise units)
    {
        int width = original.Width, height = original.Height, mcuWidth = units.McuWidth, mcuHeight = units.McuHeight, columns = units.McuColumns;
        var o = original.GetPixelSpan();
        var p = perturbed.GetPixelSpan();
        for (int cell = 0; cell < largest.Length; cell++)
        {
            int most = largest[cell];
            if (most <= bound) continue;
            float scale = (bound - Math.Min(Margin, bound / 2f)) / most;
            int x0 = cell % columns * mcuWidth, y0 = cell / columns * mcuHeight, x1 = Math.Min(width, x0 + mcuWidth);
            for (int y = y0; y < Math.Min(height, y0 + mcuHeight); y++)
                for (int i = (y * width + x0) * 4; i < (y * width + x1) * 4; i += 4)
                    for (int c = i; c < i + 3; c++) p[c] = (byte)(o[c] + (int)MathF.Round((p[c] - o[c]) * scale));
        }
        return [.. largest.Select(most => most > bound)];
    }

    // Restores the original in every coded unit (and the neighbour its upsampled chroma reaches) holding a value beyond the bound.
    static bool[] Silence(SKBitmap original, SKBitmap perturbed, SKBitmap decoded, int bound, JpegCoefficientNoise units, bool[]? silenced)
    {
        int width = original.Width, height = original.Height, mcuWidth = units.McuWidth, mcuHeight = units.McuHeight;
        int columns = units.McuColumns, rows = units.McuRows;
        silenced ??= new bool[columns * rows];
        var o = original.GetPixelSpan();
        var d = decoded.GetPixelSpan();
        for (int i = 0; i < o.Length; i++)
        {
            if ((i & 3) == 3 || Math.Abs(d[i] - o[i]) <= bound) continue;
            int x = i / 4 % width, y = i / 4 / width, cx = x / mcuWidth, cy = y / mcuHeight;
            for (int ny = Math.Max(0, cy - 1); ny <= Math.Min(rows - 1, cy + 1); ny++)
                for (int nx = Math.Max(0, cx - 1); nx <= Math.Min(columns - 1, cx + 1); nx++)
                    if (Math.Abs(nx * mcuWidth + mcuWidth / 2 - x) <= mcuWidth / 2 + 2 && Math.Abs(ny * mcuHeight + mcuHeight / 2 - y) <= mcuHeight / 2 + 2)
                        silenced[ny * columns + nx] = true;
        }
        var p = perturbed.GetPixelSpan();
        for (int cell = 0; cell < silenced.Length; cell++)
        {
            if (!silenced[cell]) continue;
            int x0 = cell % columns * mcuWidth, y0 = cell / columns * mcuHeight;
            for (int y = y0; y < Math.Min(height, y0 + mcuHeight); y++)
                o.Slice((y * width + x0) * 4, Math.Min(mcuWidth, width - x0) * 4).CopyTo(p.Slice((y * width + x0) * 4));
        }
        return silenced;
    }

    // The answer if its decoded pixels are within the bound; otherwise pulls the perturbed image back for the next pass,
    // a level further each pass so that values that keep overshooting settle.
    static PublishedImage? Check(byte[] bytes, SKBitmap original, SKBitmap perturbed, int bound, int pass, OutputFormat format, int quality)
    {
        using var decoded = Decode(bytes, original);
        var (linf, psnr) = PixelDifference.Compare(original, decoded);
        if (linf <= bound) return new PublishedImage(bytes, format, quality, linf, psnr);
        PullBack(original, perturbed, decoded, bound, 1 + pass);
        return null;
    }

    static bool StoredUpright(byte[] jpeg)
    {
        using var data = SKData.CreateCopy(jpeg);
        using var codec = SKCodec.Create(data);
        return codec?.EncodedOrigin is SKEncodedOrigin.TopLeft or SKEncodedOrigin.Default;
    }

    // The asked quality with the usual 4:2:0 chroma, then full chroma halfway to 100, then at 100: at most eight passes in all.
    static IEnumerable<(int Quality, bool FullChroma)> JpegSettings(int quality)
    {
        yield return (quality, false);
        if (quality < 98) yield return ((quality + 101) / 2, true);
        if (quality < 100) yield return (100, true);
    }

    static PublishedImage Lossless(SKBitmap original, SKBitmap perturbed, OutputFormat format, int bound)
    {
        var bytes = ImageEncoding.Encode(perturbed, format);
        using var decoded = Decode(bytes, original);
        var (linf, psnr) = PixelDifference.Compare(original, decoded);
        if (linf > bound) throw new InvalidOperationException($"the lossless answer is {linf}/255 from the original, beyond the bound {bound}");
        return new PublishedImage(bytes, format, 0, linf, psnr);
    }

    static SKBitmap Decode(byte[] bytes, SKBitmap like) => SafeImageDecoder.Decode(bytes, ImageLimits.ForOwnOutput(like.Width, like.Height), "protected image");

    // Where the decoded answer leaves [original − bound, original + bound], move the encoder's input the other way.
    static void PullBack(SKBitmap original, SKBitmap perturbed, SKBitmap decoded, int bound, int margin)
    {
        var o = original.GetPixelSpan();
        var p = perturbed.GetPixelSpan();
        var d = decoded.GetPixelSpan();
        for (int i = 0; i < o.Length; i++)
        {
            if ((i & 3) == 3) continue;
            int excess = d[i] - o[i];
            if (excess > bound) p[i] = (byte)Math.Max(0, p[i] - (excess - bound) - margin);
            else if (excess < -bound) p[i] = (byte)Math.Min(255, p[i] + (-bound - excess) + margin);
        }
    }

    // Clamps each colour value to [original − bound, original + bound], 32 bytes at a time; alpha is left as it is.
    static void Project(SKBitmap original, SKBitmap perturbed, int bound)
    {
        if (bound >= 255) return;
        var o = original.GetPixelSpan();
        var p = perturbed.GetPixelSpan();
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var room = Vector256.Create((byte)bound);
            var top = Vector256.Create((byte)(255 - bound));
            var alpha = Vector256.Create(0xFF000000u).AsByte();   // RGBA in memory: alpha is each little-endian word's top byte
            for (; i + 32 <= o.Length; i += 32)
            {
                var ov = Vector256.Create(o.Slice(i, 32));
                var pv = Vector256.Create(p.Slice(i, 32));
                var clamped = Vector256.Min(Vector256.Max(pv, Vector256.Max(ov, room) - room), Vector256.Min(ov, top) + room);
                Vector256.ConditionalSelect(alpha, pv, clamped).CopyTo(p.Slice(i, 32));
            }
        }
        for (; i < o.Length; i++)
            if ((i & 3) != 3) p[i] = (byte)Math.Clamp(p[i], o[i] - bound, o[i] + bound);
    }
}
