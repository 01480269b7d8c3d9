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

/// <summary>What was published and how far its decoded pixels are from the original's.</summary>
public sealed record PublishedImage(byte[] Bytes, OutputFormat Format, int JpegQuality, int LInfinity, double Psnr);

/// <summary>
/// Encodes a perturbed image so that its <em>decoded</em> pixels stay within a bound of the
/// original's, and measures that on the decoded bytes. Lossless formats hold it by construction
/// (checked). A JPEG upload answered as JPEG at its own quality keeps its coefficients and gets
/// the noise's added (<see cref="JpegCoefficientNoise"/>): no second loss, about the same size.
/// Otherwise the pixels are encoded. Either way, JPEG's quantisation moves values by a level or
/// two, so each pass decodes the answer and pulls every channel value outside the bound back by its
/// excess plus a margin that grows each pass; if passes do not settle it, full chroma, then higher qualities are tried, and
/// as a last resort the answer is a lossless PNG (the result says which). Works in place on the
/// perturbed image: at most the original, the perturbed image and one decoded copy at a time.
/// </summary>
public static class BoundedEncoder
{
    const int PassesPerSetting = 3;

    /// <param name="original">The upload as decoded, RGBA.</param>
    /// <param name="perturbed">Same size, RGBA; consumed (JPEG corrections are made in it).</param>
    /// <param name="bound">Largest allowed per-channel difference of the decoded answer from the original, 1/255 units.</param>
    /// <param name="upload">The upload's bytes, when it was a file this process decoded (a JPEG can then keep its coefficients).</param>
    public static PublishedImage Encode(SKBitmap original, SKBitmap perturbed, OutputEncoding encoding, int bound, byte[]? upload = null)
    {
        if (original.ColorType != SKColorType.Rgba8888 || perturbed.ColorType != SKColorType.Rgba8888)
            throw new ArgumentException("the original and the perturbed image must both be RGBA");
        if (original.Width != perturbed.Width || original.Height != perturbed.Height) throw new ArgumentException("the original and the perturbed image differ in size");
        if (encoding.Format != OutputFormat.Jpeg) return Lossless(original, perturbed, encoding.Format, bound);

        var tables = upload is null ? null : JpegTables.Read(upload);
        int quality = encoding.JpegQuality ?? Math.Clamp(tables?.Quality ?? OutputEncoding.DefaultJpegQuality, 50, 95);
        // Headroom for quantisation where the noise sits at the bound: coarser tables move values further.
        Project(original, perturbed, bound - Math.Min(bound / 2, quality >= 88 ? 1 : quality >= 70 ? 2 : 3));
        if (encoding.JpegQuality is null && tables?.Quality is { } own && StoredUpright(upload!))
            for (int pass = 0; pass < 2 * PassesPerSetting; pass++)
            {
                if (JpegCoefficientNoise.Transcode(upload!, original, perturbed) is not { } bytes) break;
                if (Check(bytes, original, perturbed, bound, pass, OutputFormat.Jpeg, own) is { } published) return published;
            }

        // Each setting starts again from the noise as mapped: corrections made for one quantiser misguide another.
        using var target = perturbed.Copy();
        foreach (var (q, fullChroma) in JpegSettings(quality))
        {
            target.CopyTo(perturbed);
            for (int pass = 0; pass < (q == 100 ? 2 * PassesPerSetting : PassesPerSetting); pass++)
                if (Check(ImageEncoding.Jpeg(perturbed, q, fullChroma), original, perturbed, bound, pass, OutputFormat.Jpeg, q) is { } published)
                    return published;
        }
        Project(original, perturbed, bound);
        return Lossless(original, perturbed, OutputFormat.Png, bound);
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

    // The asked quality with the usual 4:2:0 chroma, then 4:4:4, then 4:4:4 halfway to 100, then at 100.
    static IEnumerable<(int Quality, bool FullChroma)> JpegSettings(int quality)
    {
        yield return (quality, false);
        yield return (quality, true);
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

    static void Project(SKBitmap original, SKBitmap perturbed, int bound)
    {
        var o = original.GetPixelSpan();
        var p = perturbed.GetPixelSpan();
        for (int i = 0; i < o.Length; i++)
            if ((i & 3) != 3) p[i] = (byte)Math.Clamp(p[i], o[i] - bound, o[i] + bound);
    }
}
