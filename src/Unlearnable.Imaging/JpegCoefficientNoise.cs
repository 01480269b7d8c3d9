using System.Runtime.Intrinsics;
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
        int width = original.Width, height = original.Height, samplesWide = blocksWide * 8;
        Parallel.For(0, blocks.Length, () => (Row: new float[width], Strip: new double[8 * samplesWide]), (by, _, buffers) =>
        {
            var (row, strip) = buffers;
            if (!NoiseStrip(by, weights, stepX, stepY, original, perturbed, row, strip)) return buffers;
            Span<double> samples = stackalloc double[64];
            Span<double> frequencies = stackalloc double[64];
            for (int bx = 0; bx < blocksWide; bx++)
            {
                bool any = false;
                for (int y = 0; y < 8; y++)
                    for (int x = 0; x < 8; x++)
                        any |= (samples[y * 8 + x] = strip[y * samplesWide + bx * 8 + x]) != 0;
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
            return buffers;
        }, _ => { });
    }

    // The noise of one row of blocks in this component: each of its 8 sample rows, each sample the mean over the
    // stepX × stepY pixels it covers; past the picture's edge the last pixels repeat, as libjpeg pads. Each pixel
    // row is taken to the component once, so the work is linear in the pixels. False when the strip holds no noise.
    static bool NoiseStrip(int by, float[] weights, int stepX, int stepY, SKBitmap original, SKBitmap perturbed, float[] row, double[] strip)
    {
        int width = original.Width, height = original.Height, samplesWide = strip.Length / 8;
        var o = original.GetPixelSpan();
        var p = perturbed.GetPixelSpan();
        Array.Clear(strip);
        bool any = false;
        for (int y = 0; y < 8; y++)
        {
            var samples = strip.AsSpan(y * samplesWide, samplesWide);
            for (int j = 0; j < stepY; j++)
            {
                int start = Math.Min(height - 1, ((by * 8 + y) * stepY + j)) * width * 4;
                bool rowMoved = false;
                for (int px = 0, at = start; px < width; px++, at += 4)
                    rowMoved |= (row[px] = weights[0] * (p[at] - o[at]) + weights[1] * (p[at + 1] - o[at + 1]) + weights[2] * (p[at + 2] - o[at + 2])) != 0;
                if (!rowMoved) continue;
                any = true;
                for (int sx = 0; sx < samplesWide; sx++)
                    for (int i = 0; i < stepX; i++) samples[sx] += row[Math.Min(width - 1, sx * stepX + i)];
            }
            if (stepX * stepY > 1) for (int sx = 0; sx < samplesWide; sx++) samples[sx] /= stepX * stepY;
        }
        return any;
    }

    // The JPEG DCT: F(v, u) = Σy Σx f(y, x) A[v, y] A[u, x] (A: JpegStandard.DctBasis), as two passes of
    // 8 × 8 products, four frequencies per vector; each sum is taken in the same order as written.
    static readonly double[] BasisTransposed = [.. Enumerable.Range(0, 64).Select(i => JpegStandard.DctBasis[i % 8, i / 8])];   // [x, u] = A[u, x]
    static readonly double[] Basis = [.. Enumerable.Range(0, 64).Select(i => JpegStandard.DctBasis[i / 8, i % 8])];             // [v, y] = A[v, y]

    static void Forward(ReadOnlySpan<double> block, Span<double> result)
    {
        Span<double> rows = stackalloc double[64];
        Multiply(block, BasisTransposed, rows);
        Multiply(Basis, rows, result);
    }

    // product = left × right for 8 × 8 matrices, a row of four products per vector.
    static void Multiply(ReadOnlySpan<double> left, ReadOnlySpan<double> right, Span<double> product)
    {
        for (int i = 0; i < 8; i++)
        {
            var low = Vector256<double>.Zero;
            var high = Vector256<double>.Zero;
            for (int k = 0; k < 8; k++)
            {
                var weight = Vector256.Create(left[i * 8 + k]);
                low += weight * Vector256.Create(right.Slice(k * 8, 4));
                high += weight * Vector256.Create(right.Slice(k * 8 + 4, 4));
            }
            low.CopyTo(product.Slice(i * 8, 4));
            high.CopyTo(product.Slice(i * 8 + 4, 4));
        }
    }
}
