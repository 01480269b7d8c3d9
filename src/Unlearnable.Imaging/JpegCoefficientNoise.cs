using BitMiracle.LibJpeg.Classic;
using SkiaSharp;

namespace Unlearnable.Imaging;

/// <summary>
/// Publishes noise on a JPEG upload without re-encoding the photo: the upload's quantised DCT
/// coefficients are read, the noise (perturbed − original) is taken to YCbCr, subsampled like each
/// component, transformed block by block and quantised with the upload's own tables, added, and
/// written back with the same tables and sampling (Huffman codes optimised). The photo's own
/// coefficients come back unchanged, so nothing of it is lost a second time and the file stays its
/// size; the decoded answer differs from the decoded upload by the quantised noise alone.
/// </summary>
public static class JpegCoefficientNoise
{
    /// <param name="upload">The JPEG as uploaded, stored upright (EXIF orientation top-left).</param>
    /// <param name="original">The upload decoded, RGBA.</param>
    /// <param name="perturbed">What should be published, RGBA, same size.</param>
    /// <returns>
    /// The new JPEG and the size of its minimum coded unit (the pixels one set of luma and chroma blocks
    /// covers), or null when this upload cannot be carried over (colour space, precision, size or a decoding fault).
    /// </returns>
    public static (byte[] Bytes, int McuWidth, int McuHeight)? Transcode(byte[] upload, SKBitmap original, SKBitmap perturbed)
    {
        if (JpegTables.Read(upload) is not { } tables) return null;
        try
        {
            var source = new jpeg_decompress_struct();
            source.jpeg_stdio_src(new MemoryStream(upload, writable: false));
            source.jpeg_read_header(true);
            bool ycc = source.Jpeg_color_space == J_COLOR_SPACE.JCS_YCbCr && source.Num_components == 3;
            bool grey = source.Jpeg_color_space == J_COLOR_SPACE.JCS_GRAYSCALE && source.Num_components == 1;
            if (!(ycc || grey) || source.Data_precision != 8 || source.Image_width != original.Width || source.Image_height != original.Height) return null;
            var coefficients = source.jpeg_read_coefficients();
            var components = source.Comp_info;
            int maxH = components.Max(c => c.H_samp_factor), maxV = components.Max(c => c.V_samp_factor);
            for (int ci = 0; ci < components.Length; ci++)
            {
                var component = components[ci];
                if (tables.Table(component.Quant_tbl_no) is not { } quant) return null;
                int blocksHigh = (int)Math.Ceiling(original.Height * (double)component.V_samp_factor / (maxV * 8));
                var blocks = coefficients[ci].Access(0, blocksHigh);
                AddToComponent(blocks, component.Width_in_blocks, JpegStandard.RgbToYcc[ci], maxH / component.H_samp_factor, maxV / component.V_samp_factor, quant, original, perturbed);
            }
            var output = new MemoryStream();
            var target = new jpeg_compress_struct();
            target.jpeg_stdio_dest(output);
            source.jpeg_copy_critical_parameters(target);
            target.Optimize_coding = true;
            target.jpeg_write_coefficients(coefficients);
            target.jpeg_finish_compress();
            source.jpeg_finish_decompress();
            return (output.ToArray(), 8 * maxH, 8 * maxV);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            return null;   // libjpeg refused something in the file: the caller encodes from pixels instead
        }
    }

    static void AddToComponent(JBLOCK[][] blocks, int blocksWide, float[] weights, int stepX, int stepY, int[] quant, SKBitmap original, SKBitmap perturbed)
    {
        int width = original.Width, height = original.Height;
        Parallel.For(0, blocks.Length, by =>
        {
            var o = original.GetPixelSpan();
            var p = perturbed.GetPixelSpan();
            Span<double> samples = stackalloc double[64];
            Span<double> frequencies = stackalloc double[64];
            for (int bx = 0; bx < blocksWide; bx++)
            {
                bool any = false;
                for (int y = 0; y < 8; y++)
                    for (int x = 0; x < 8; x++)
                    {
                        // One component sample covers stepX × stepY pixels; padding past the edge repeats the last ones, as libjpeg pads.
                        double sum = 0;
                        for (int j = 0; j < stepY; j++)
                            for (int i = 0; i < stepX; i++)
                            {
                                int px = Math.Min(width - 1, (bx * 8 + x) * stepX + i), py = Math.Min(height - 1, (by * 8 + y) * stepY + j);
                                int at = (py * width + px) * 4;
                                sum += weights[0] * (p[at] - o[at]) + weights[1] * (p[at + 1] - o[at + 1]) + weights[2] * (p[at + 2] - o[at + 2]);
                            }
                        samples[y * 8 + x] = sum / (stepX * stepY);
                        any |= samples[y * 8 + x] != 0;
                    }
                if (!any) continue;
                Forward(samples, frequencies);
                var block = blocks[by][bx];
                for (int k = 0; k < 64; k++)
                {
                    int change = (int)Math.Round(frequencies[k] / quant[k]);
                    if (change == 0) continue;
                    int limit = k == 0 ? 2047 : 1023;
                    block[k] = (short)Math.Clamp(block[k] + change, -limit, limit);
                }
            }
        });
    }

    // The JPEG DCT: F(v, u) = Σy Σx f(y, x) A[v, y] A[u, x] (A: JpegStandard.DctBasis).
    static void Forward(ReadOnlySpan<double> block, Span<double> result)
    {
        Span<double> rows = stackalloc double[64];
        for (int y = 0; y < 8; y++)
            for (int u = 0; u < 8; u++)
            {
                double s = 0;
                for (int x = 0; x < 8; x++) s += block[y * 8 + x] * JpegStandard.DctBasis[u, x];
                rows[y * 8 + u] = s;
            }
        for (int v = 0; v < 8; v++)
            for (int u = 0; u < 8; u++)
            {
                double s = 0;
                for (int y = 0; y < 8; y++) s += rows[y * 8 + u] * JpegStandard.DctBasis[v, y];
                result[v * 8 + u] = s;
            }
    }
}
