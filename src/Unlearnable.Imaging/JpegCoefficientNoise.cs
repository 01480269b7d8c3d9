using BitMiracle.LibJpeg.Classic;
using System.Runtime.Intrinsics;
using SkiaSharp;

namespace Unlearnable.Imaging;

/// <summary>
/// Publishes noise on a JPEG upload without re-encoding the photo: the upload's quantised DCT
/// coefficients are read once, the noise (perturbed − original) is taken to YCbCr, subsampled like
/// each component, transformed block by block and quantised with the upload's own tables, added, and
/// written back with the same tables and sampling (Huffman codes optimised). The photo's own
/// coefficients come back unchanged, so nothing of it is lost a second time and the file stays its
/// size; the decoded answer differs from the decoded upload by the quantised noise alone.
/// <para>
/// Kept open across an encoder's passes: the upload is parsed once, and <see cref="Quantize"/> redoes
/// only the coded units the caller changed since the last pass.
/// </para>
/// </summary>
public sealed class JpegCoefficientNoise : IDisposable
{
    readonly jpeg_decompress_struct _source;
    readonly jvirt_array<JBLOCK>[] _coefficients;
    readonly Component[] _components;
    readonly SKBitmap _original;
    readonly JpegTables _tables;
    TurboDecoder? _decoder;

    /// <summary>The pixels one minimum coded unit (one set of luma and chroma blocks) covers.</summary>
    public int McuWidth { get; }
    public int McuHeight { get; }
    public int McuColumns { get; }
    public int McuRows { get; }

    /// <param name="Changes">Per block, 64 values: the answer's coefficients minus the upload's (after clamping to JPEG's range).</param>
    /// <param name="StepX">Pixels per sample across (maximum horizontal sampling factor / this component's).</param>
    /// <param name="Weights">This component's weights of R, G and B (a grey file's one component is luma).</param>
    /// <param name="Quant">The component's quantisation table, natural order.</param>
    /// <param name="Reciprocals">1 over each entry of the component's quantisation table, natural order.</param>
    sealed record Component(BlockGrid Grid, short[] Changes, int StepX, int StepY, float[] Weights, int[] Quant, float[] Reciprocals);

    JpegCoefficientNoise(jpeg_decompress_struct source, jvirt_array<JBLOCK>[] coefficients, Component[] components, SKBitmap original, JpegTables tables, int mcuWidth, int mcuHeight)
    {
        _tables = tables;
        _source = source;
        _coefficients = coefficients;
        _components = components;
        _original = original;
        McuWidth = mcuWidth;
        McuHeight = mcuHeight;
        McuColumns = (original.Width + mcuWidth - 1) / mcuWidth;
        McuRows = (original.Height + mcuHeight - 1) / mcuHeight;
    }

    /// <param name="upload">The JPEG as uploaded, stored upright (EXIF orientation top-left).</param>
    /// <param name="original">The upload decoded, RGBA; read by every later call, so kept alive and unchanged by the caller.</param>
    /// <returns>Null when this upload cannot be carried over (colour space, precision, size or a decoding fault).</returns>
    public static JpegCoefficientNoise? Open(byte[] upload, SKBitmap original)
    {
        if (JpegTables.Read(upload) is not { } tables) return null;
        var source = new jpeg_decompress_struct();
        try
        {
            source.jpeg_stdio_src(new MemoryStream(upload, writable: false));
            source.jpeg_read_header(true);
            bool ycc = source.Jpeg_color_space == J_COLOR_SPACE.JCS_YCbCr && source.Num_components == 3;
            bool grey = source.Jpeg_color_space == J_COLOR_SPACE.JCS_GRAYSCALE && source.Num_components == 1;
            if (!(ycc || grey) || source.Data_precision != 8 || source.Image_width != original.Width || source.Image_height != original.Height) return null;
            var coefficients = source.jpeg_read_coefficients();
            var info = source.Comp_info;
            int maxH = info.Max(c => c.H_samp_factor), maxV = info.Max(c => c.V_samp_factor);
            if (info.Any(c => maxH % c.H_samp_factor != 0 || maxV % c.V_samp_factor != 0)) return null;   // fractional sampling: no decoder we use takes it
            var components = new Component[info.Length];
            for (int ci = 0; ci < info.Length; ci++)
            {
                var c = info[ci];
                if (tables.Table(c.Quant_tbl_no) is not { } quant) return null;
                int stepX = maxH / c.H_samp_factor, stepY = maxV / c.V_samp_factor;
                int blocksHigh = ((original.Height + stepY - 1) / stepY + 7) / 8;   // rows of blocks holding the picture's samples
                components[ci] = new Component(new BlockGrid(coefficients[ci].Access(0, blocksHigh), c.Width_in_blocks, blocksHigh, c.H_samp_factor, c.V_samp_factor),
                    new short[blocksHigh * c.Width_in_blocks * 64], stepX, stepY, JpegStandard.RgbToYcc[ci], quant, [.. quant.Select(q => 1f / q)]);
            }
            return new JpegCoefficientNoise(source, coefficients, components, original, tables, 8 * maxH, 8 * maxV);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            return null;   // libjpeg refused something in the file: the caller encodes from pixels instead
        }
    }

    /// <summary>
    /// Sets the answer's coefficients to the upload's plus the quantised noise of <paramref name="perturbed"/>,
    /// in the coded units marked in <paramref name="units"/> (row-major, <see cref="McuColumns"/> wide), or in all of them.
    /// </summary>
    public void Quantize(SKBitmap perturbed, bool[]? units = null)
    {
        if (perturbed.Width != _original.Width || perturbed.Height != _original.Height) throw new ArgumentException("the perturbed image differs in size from the upload");
        Parallel.For(0, McuRows, row =>
        {
            // The unit's noise in each component's terms (Y, Cb, Cr or grey), one value per pixel; the samples then average it.
            int pixels = McuWidth * McuHeight;
            Span<float> noise = stackalloc float[_components.Length * pixels];
            Span<float> samples = stackalloc float[64];
            Span<float> frequencies = stackalloc float[64];
            Span<int> levels = stackalloc int[64];
            var o = _original.GetPixelSpan();
            var p = perturbed.GetPixelSpan();
            for (int column = 0; column < McuColumns; column++)
            {
                if (units is not null && !units[row * McuColumns + column]) continue;
                bool any = UnitNoise(column, row, o, p, noise);
                for (int ci = 0; ci < _components.Length; ci++)
                {
                    var c = _components[ci];
                    for (int v = 0; v < c.Grid.V; v++)
                        for (int h = 0; h < c.Grid.H; h++)
                        {
                            if (!c.Grid.InUnit(column, row, h, v, out int bx, out int by)) continue;   // padding blocks of a partial unit: no data
                            bool noisy = any && BlockSamples(c, h, v, noise.Slice(ci * pixels, pixels), samples);
                            if (noisy)
                            {
                                BlockDct.Forward(samples, frequencies);
                                Levels(frequencies, c.Reciprocals, levels);
                            }
                            SetBlock(c, bx, by, noisy ? levels : default);
                        }
                }
            }
        });
    }

    // The noise over one coded unit, row-major, per component (its weighting of the R, G and B differences); past the
    // picture's edge the last pixels repeat, as libjpeg pads. False when the unit holds no noise.
    bool UnitNoise(int column, int row, ReadOnlySpan<byte> o, ReadOnlySpan<byte> p, Span<float> noise)
    {
        int width = _original.Width, height = _original.Height, left = column * McuWidth, top = row * McuHeight, pixels = McuWidth * McuHeight;
        bool any = false, colour = _components.Length == 3;
        var (y, cb, cr) = (_components[0].Weights, colour ? _components[1].Weights : null, colour ? _components[2].Weights : null);
        float y0 = y[0], y1 = y[1], y2 = y[2];
        bool inside = left + McuWidth <= width;
        for (int line = 0, d = 0; line < McuHeight; line++)
        {
            int start = Math.Min(height - 1, top + line) * width;
            for (int x = 0; x < McuWidth; x++, d++)
            {
                int at = (start + (inside ? left + x : Math.Min(width - 1, left + x))) * 4;
                int r = p[at] - o[at], g = p[at + 1] - o[at + 1], b = p[at + 2] - o[at + 2];
                if ((r | g | b) == 0)
                {
                    noise[d] = 0;
                    if (colour) noise[pixels + d] = noise[2 * pixels + d] = 0;
                    continue;
                }
                any = true;
                noise[d] = y0 * r + y1 * g + y2 * b;
                if (!colour) continue;
                noise[pixels + d] = cb![0] * r + cb[1] * g + cb[2] * b;
                noise[2 * pixels + d] = cr![0] * r + cr[1] * g + cr[2] * b;
            }
        }
        return any;
    }

    // Block (h, v) of a component within its unit: each sample the mean of the component's noise over the StepX × StepY
    // pixels it covers. False when the block holds no noise.
    bool BlockSamples(Component c, int h, int v, ReadOnlySpan<float> noise, Span<float> samples)
    {
        if (c.StepX == 1 && c.StepY == 1)
            for (int y = 0; y < 8; y++) noise.Slice((v * 8 + y) * McuWidth + h * 8, 8).CopyTo(samples.Slice(y * 8, 8));
        else
        {
            float area = c.StepX * c.StepY;
            for (int y = 0; y < 8; y++)
                for (int x = 0; x < 8; x++)
                {
                    float sum = 0;
                    for (int j = 0; j < c.StepY; j++)
                    {
                        var line = noise.Slice(((v * 8 + y) * c.StepY + j) * McuWidth + (h * 8 + x) * c.StepX, c.StepX);
                        foreach (var value in line) sum += value;
                    }
                    samples[y * 8 + x] = sum / area;
                }
        }
        return samples.ContainsAnyExcept(0f);
    }

    // The frequencies in steps of the quantisation table, rounded half to even as Math.Round does.
    static void Levels(ReadOnlySpan<float> frequencies, float[] reciprocals, Span<int> levels)
    {
        for (int k = 0; k < 64; k += 8)
            Vector256.ConvertToInt32(Vector256.Round(Vector256.Create(frequencies.Slice(k, 8)) * Vector256.Create(reciprocals.AsSpan(k, 8)))).CopyTo(levels.Slice(k, 8));
    }

    // The block's coefficients become the upload's plus the noise's levels (none when empty), clamped to JPEG's range.
    static void SetBlock(Component c, int bx, int by, ReadOnlySpan<int> levels)
    {
        var changes = c.Changes.AsSpan((by * c.Grid.BlocksWide + bx) * 64, 64);
        var block = c.Grid.Blocks[by][bx];
        if (JpegBlocks.Accessible && Vector256.IsHardwareAccelerated)
        {
            SetValues(JpegBlocks.Values(block), changes, levels);
            return;
        }
        for (int k = 0; k < 64; k++)
        {
            int change = levels.IsEmpty ? 0 : levels[k];
            if (change == 0 && changes[k] == 0) continue;   // already the upload's value
            int upload = block[k] - changes[k];
            // Within 8-bit baseline's ranges (DC differences then stay within 11 bits); a value without noise stays the
            // upload's whatever it is, so that a unit given no noise decodes to the original.
            int answer = change == 0 ? upload : k == 0 ? Math.Clamp(upload + change, -1024, 1023) : Math.Clamp(upload + change, -1023, 1023);
            block[k] = (short)answer;
            changes[k] = (short)(answer - upload);
        }
    }

    static readonly Vector256<short> Lowest = Vector256.Create(-1024, -1023, -1023, -1023, -1023, -1023, -1023, -1023, -1023, -1023, -1023, -1023, -1023, -1023, -1023, -1023);

    // SetBlock's rule sixteen coefficients at a time. Levels fit 16 bits: noise of at most 255 per sample gives
    // |F| ≤ 8 × 255 before quantisation.
    static void SetValues(short[] values, Span<short> changes, ReadOnlySpan<int> levels)
    {
        for (int k = 0; k < 64; k += 16)
        {
            var value = Vector256.Create<short>(values.AsSpan(k, 16));
            var upload = value - Vector256.Create<short>(changes.Slice(k, 16));
            var change = levels.IsEmpty ? Vector256<short>.Zero
                : Vector256.Narrow(Vector256.Create<int>(levels.Slice(k, 8)), Vector256.Create<int>(levels.Slice(k + 8, 8)));
            // The upload's value is brought within ±4096 before the sum (a malformed file's may be near ±32767), so that the
            // 16-bit sum cannot wrap and clamps as the scalar rule's does.
            var sum = Vector256.Min(Vector256.Max(upload, Vector256.Create((short)-4096)), Vector256.Create((short)4096)) + change;
            var answer = Vector256.ConditionalSelect(Vector256.Equals(change, Vector256<short>.Zero), upload,
                Vector256.Min(Vector256.Max(sum, k == 0 ? Lowest : Vector256.Create((short)-1023)), Vector256.Create((short)1023)));
            answer.CopyTo(values.AsSpan(k, 16));
            (answer - upload).CopyTo(changes.Slice(k, 16));
        }
    }

    /// <summary>
    /// The answer as it stands: the upload's coefficients plus the quantised noise, with its tables and sampling,
    /// Huffman codes optimised; null when no writer can hold them (the caller then encodes from pixels).
    /// </summary>
    public byte[]? Write()
    {
        if (BaselineJpegWriter.TryWrite(_original.Width, _original.Height, Planes(), _tables,
                ((byte)_source.Density_unit, Math.Max(1, (int)_source.X_density), Math.Max(1, (int)_source.Y_density))) is { } written)
            return written;
        try { return WriteWithLibJpeg(); }
        catch (Exception e) when (e is not OutOfMemoryException) { return null; }   // e.g. a DC difference past what 8-bit JPEG codes
    }

    /// <summary>
    /// Decodes the answer's coefficients into <paramref name="rgba"/> as libjpeg-turbo (Skia's decoder) does, without a file
    /// (<see cref="TurboDecoder"/>): all of it, or the units marked (and the neighbours their chroma reaches) since the
    /// last call. False when the file's sampling is not one that decoder reproduces.
    /// </summary>
    public bool TryDecode(SKBitmap rgba, bool[]? units = null)
    {
        if (rgba.Width != _original.Width || rgba.Height != _original.Height || rgba.ColorType != SKColorType.Rgba8888) throw new ArgumentException("the target must be RGBA and the upload's size");
        if (_decoder is null)
        {
            _decoder = TurboDecoder.For(_original.Width, _original.Height, [.. _components.Select(c => new TurboDecoder.Plane(c.Grid, c.Quant))]);
            if (_decoder is null) return false;
            units = null;   // a new decoder holds no samples yet: all of it, whatever was marked
        }
        _decoder.Decode(rgba.GetPixelSpan(), units);
        return true;
    }

    /// <summary>Lets go of what <see cref="TryDecode"/> keeps between calls (each component's decoded samples); a later call starts afresh.</summary>
    public void ReleaseDecoder() => _decoder = null;

    IReadOnlyList<BaselineJpegWriter.Plane> Planes() => [.. _components.Select((c, i) =>
        new BaselineJpegWriter.Plane(_source.Comp_info[i].Component_id, _source.Comp_info[i].Quant_tbl_no, c.Grid))];

    /// <summary>The same answer written by LibJpeg.NET (the reference, and the fallback for what baseline JPEG cannot hold).</summary>
    public byte[] WriteWithLibJpeg()
    {
        var output = new MemoryStream();
        var target = new jpeg_compress_struct();
        target.jpeg_stdio_dest(output);
        _source.jpeg_copy_critical_parameters(target);
        target.Optimize_coding = true;
        target.jpeg_write_coefficients(_coefficients);
        target.jpeg_finish_compress();
        return output.ToArray();
    }

    public void Dispose() => _source.jpeg_abort_decompress();
}
