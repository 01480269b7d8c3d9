using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using BitMiracle.LibJpeg.Classic;

namespace Unlearnable.Imaging;

/// <summary>
/// The pixels libjpeg-turbo's default decompression makes of quantised coefficients — the decoding Skia runs: the
/// "islow" integer IDCT (13-bit constants, 2 extra bits between the passes), triangle ("fancy") upsampling of
/// subsampled chroma with edge samples repeated, and fixed-point YCbCr → RGB (16 fraction bits) — without writing
/// a file and decoding it. Integer arithmetic throughout, so the result is the decoder's to the bit (tested against
/// Skia for each sampling taken); an answer's passes can then check it this way, and redo only the coded units
/// they changed. The IDCT works in 32 bits where libjpeg's C code takes 64: the same for any coefficients that
/// decode to pixels near the 8-bit range, not for a crafted file's extreme ones, which the encoder's final
/// comparison with the decoded file catches. Takes grey files and YCbCr with full-resolution luma and chroma at 1 × 1, 2 × 1 or 2 × 2.
/// </summary>
sealed class TurboDecoder
{
    /// <param name="Quant">The component's quantisation table, natural order.</param>
    public sealed record Plane(BlockGrid Grid, int[] Quant);

    readonly Plane[] _planes;
    readonly byte[][] _samples;      // each component's samples as its IDCT leaves them, BlocksWide × 8 a row
    readonly int _width, _height, _stepX, _stepY, _chromaWide, _chromaHigh;

    TurboDecoder(Plane[] planes, int width, int height, int stepX, int stepY)
    {
        _planes = planes;
        _width = width;
        _height = height;
        _stepX = stepX;
        _stepY = stepY;
        _samples = [.. planes.Select(p => new byte[p.Grid.BlocksWide * 8 * p.Grid.BlocksHigh * 8])];
        _chromaWide = (width + stepX - 1) / stepX;
        _chromaHigh = (height + stepY - 1) / stepY;
    }

    public int McuWidth => 8 * _planes[0].Grid.H;
    public int McuHeight => 8 * _planes[0].Grid.V;

    /// <returns>Null for what this does not reproduce: other samplings; chroma one sample high, or under three wide
    /// (libjpeg-turbo then upsamples without the triangle filter); and without AVX2 (ARM64, for one), where its 256-bit
    /// vectors would only be emulated and writing and decoding a file is quicker.</returns>
    public static TurboDecoder? For(int width, int height, IReadOnlyList<Plane> planes)
    {
        if (!JpegBlocks.Accessible || !Avx2.IsSupported) return null;   // the passes write files instead
        if (planes.Count == 1) return new TurboDecoder([.. planes], width, height, 1, 1);
        if (planes.Count != 3) return null;
        var (luma, cb, cr) = (planes[0].Grid, planes[1].Grid, planes[2].Grid);
        if ((cb.H, cb.V, cr.H, cr.V) != (1, 1, 1, 1)) return null;
        int stepX = luma.H, stepY = luma.V;
        if (stepX > 2 || stepY > 2 || (stepX, stepY) == (1, 2)) return null;   // 4:4:0 is not taken: no encoder here makes one to test it against
        if ((stepX == 2 && (width + 1) / 2 < 3) || (stepY == 2 && (height + 1) / 2 < 2)) return null;
        return new TurboDecoder([.. planes], width, height, stepX, stepY);
    }

    /// <summary>
    /// Decodes the coded units marked in <paramref name="units"/> (row-major), or all of them, into
    /// <paramref name="rgba"/> (width × height × 4, alpha 255). Chroma upsampling reaches across a unit's edge,
    /// so the pixels of marked units' neighbours are redone too.
    /// </summary>
    public void Decode(Span<byte> rgba, bool[]? units = null)
    {
        int columns = (_width + McuWidth - 1) / McuWidth, rows = (_height + McuHeight - 1) / McuHeight;
        for (int row = 0; row < rows; row++)
            for (int column = 0; column < columns; column++)
                if (units is null || units[row * columns + column])
                    for (int ci = 0; ci < _planes.Length; ci++)
                    {
                        var (g, quant) = (_planes[ci].Grid, _planes[ci].Quant);
                        for (int v = 0; v < g.V; v++)
                            for (int h = 0; h < g.H; h++)
                                if (g.InUnit(column, row, h, v, out int bx, out int by))
                                    Idct.Block(JpegBlocks.Values(g.Blocks[by][bx]), quant, _samples[ci].AsSpan((by * 8 * g.BlocksWide + bx) * 8), g.BlocksWide * 8);
                    }
        int reachX = _stepX > 1 ? 1 : 0, reachY = _stepY > 1 ? 1 : 0;   // in units, along the subsampled directions
        for (int row = 0; row < rows; row++)
            for (int column = 0; column < columns; column++)
            {
                if (units is not null && !Near(units, columns, rows, column, row, reachX, reachY)) continue;
                int end = column + 1;   // a run of units to redo, converted a pixel row at a time
                while (end < columns && (units is null || Near(units, columns, rows, end, row, reachX, reachY))) end++;
                int x0 = column * McuWidth, x1 = Math.Min(_width, end * McuWidth), y0 = row * McuHeight;
                for (int y = y0; y < Math.Min(_height, y0 + McuHeight); y++)
                    for (int from = x0; from < x1; from += RowChunk)   // stack buffers stay small on a 12,000-pixel row
                        Row(rgba.Slice((y * _width + from) * 4), y, from, Math.Min(x1, from + RowChunk));
                column = end;
            }
    }

    const int RowChunk = 1024;   // even, as chroma runs must start

    static bool Near(bool[] units, int columns, int rows, int column, int row, int reachX, int reachY)
    {
        for (int r = Math.Max(0, row - reachY); r <= Math.Min(rows - 1, row + reachY); r++)
            for (int c = Math.Max(0, column - reachX); c <= Math.Min(columns - 1, column + reachX); c++)
                if (units[r * columns + c]) return true;
        return false;
    }

    // Pixels x0..x1 of row y: luma as decoded, chroma upsampled, converted eight at a time.
    void Row(Span<byte> rgba, int y, int x0, int x1)
    {
        int count = x1 - x0;
        var luma = _samples[0].AsSpan(y * _planes[0].Grid.BlocksWide * 8 + x0, count);
        var pixels = MemoryMarshal.Cast<byte, uint>(rgba[..(count * 4)]);
        if (_planes.Length == 1)
        {
            for (int x = 0; x < count; x++) pixels[x] = luma[x] * 0x010101u | 0xFF000000u;
            return;
        }
        Span<int> cb = stackalloc int[count];
        Span<int> cr = stackalloc int[count];
        Upsample(_samples[1], y, x0, cb[..count]);
        Upsample(_samples[2], y, x0, cr[..count]);
        int i = 0;
        for (; i + 8 <= count; i += 8)
            {
                var eight = Avx2.ConvertToVector256Int32(Vector128.CreateScalar(MemoryMarshal.Read<ulong>(luma.Slice(i, 8))).AsByte());
                Convert(eight, Vector256.Create<int>(cb.Slice(i, 8)), Vector256.Create<int>(cr.Slice(i, 8))).AsUInt32().CopyTo(pixels.Slice(i, 8));
            }
        for (; i < count; i++)
            pixels[i] = Convert(Vector256.Create((int)luma[i]), Vector256.Create(cb[i]), Vector256.Create(cr[i])).AsUInt32()[0];
    }

    // jdcolor.c's fixed-point YCbCr → RGB, its tables' entries computed in place (16 fraction bits, rounded half up), packed
    // as RGBA words with alpha 255.
    static Vector256<int> Convert(Vector256<int> luma, Vector256<int> cb, Vector256<int> cr)
    {
        const int Bits = 16;
        var half = Vector256.Create(1 << (Bits - 1));
        var b = cb - Vector256.Create(128);
        var r = cr - Vector256.Create(128);
        var red = Limit(luma + Vector256.ShiftRightArithmetic(r * 91881 + half, Bits));                  // 1.402
        var green = Limit(luma + Vector256.ShiftRightArithmetic(b * -22554 + r * -46802 + half, Bits));  // −0.34414, −0.71414
        var blue = Limit(luma + Vector256.ShiftRightArithmetic(b * 116130 + half, Bits));                // 1.772
        return red | Vector256.ShiftLeft(green, 8) | Vector256.ShiftLeft(blue, 16) | Vector256.Create(unchecked((int)0xFF000000));
    }

    static Vector256<int> Limit(Vector256<int> value) => Vector256.Min(Vector256.Max(value, Vector256<int>.Zero), Vector256.Create(255));

    // libjpeg-turbo's fancy upsampling of one chroma plane for pixels x0.. of row y: 3/4 of the nearer sample and 1/4 of
    // the further one in each subsampled direction (edge samples repeat), with its rounding biases, which alternate so
    // that errors do not pile up one way.
    void Upsample(byte[] plane, int y, int x0, Span<int> output)
    {
        int stride = _planes[1].Grid.BlocksWide * 8, near = y / _stepY;
        var n = plane.AsSpan(near * stride, stride);
        if (_stepY == 1 && _stepX == 1)
        {
            for (int i = 0; i < output.Length; i++) output[i] = n[x0 + i];
            return;
        }
        // Above for the upper row of a pair, below for the lower.
        var f = _stepY == 1 ? n : plane.AsSpan(Math.Clamp(y % 2 == 0 ? near - 1 : near + 1, 0, _chromaHigh - 1) * stride, stride);
        // Column sums of the vertical step (just the row when not subsampled that way) for the samples these pixels reach,
        // one more each side, where the picture's edge repeats its sample: 3 × edge + edge then gives what libjpeg's edge
        // case does (4 × edge, with the same bias at 2 × 2 and none needed at 2 × 1, where it rounds away).
        if (x0 % 2 != 0) throw new ArgumentException("a run of pixels starts on an even column");
        int first = x0 / 2 - 1, last = (x0 + output.Length - 1) / 2 + 1;
        Span<int> sums = stackalloc int[last - first + 1];
        for (int c = first; c <= last; c++)
        {
            int at = Math.Clamp(c, 0, _chromaWide - 1);
            sums[c - first] = _stepY == 1 ? n[at] : 3 * n[at] + f[at];
        }
        // Weights sum to 4, or 16 with the vertical step. Runs start on a unit's edge, so x0 is even: output 2j is sample
        // x0 / 2 + j's left pixel, 2j + 1 its right.
        int shift = _stepY == 1 ? 2 : 4, evenBias = _stepY == 1 ? 1 : 8, oddBias = _stepY == 1 ? 2 : 7;
        int j = 0;
        for (; 2 * j + 16 <= output.Length; j += 8)
            {
                var three = Vector256.Create<int>(sums.Slice(j + 1, 8)) * 3;
                var left = Vector256.ShiftRightArithmetic(three + Vector256.Create<int>(sums.Slice(j, 8)) + Vector256.Create(evenBias), shift);
                var right = Vector256.ShiftRightArithmetic(three + Vector256.Create<int>(sums.Slice(j + 2, 8)) + Vector256.Create(oddBias), shift);
                Vector256<int> low = Avx2.UnpackLow(left, right), high = Avx2.UnpackHigh(left, right);   // pairs 0, 1, 4, 5 and 2, 3, 6, 7
                Avx2.Permute2x128(low, high, 0x20).CopyTo(output.Slice(2 * j, 8));
                Avx2.Permute2x128(low, high, 0x31).CopyTo(output.Slice(2 * j + 8, 8));
            }
        for (int o = 2 * j; o < output.Length; o++)
        {
            int at = o / 2 + 1;
            output[o] = o % 2 == 0 ? (3 * sums[at] + sums[at - 1] + evenBias) >> shift : (3 * sums[at] + sums[at + 1] + oddBias) >> shift;
        }
    }

    /// <summary>
    /// jidctint.c's islow inverse DCT: columns into a workspace scaled by 2², then rows, descaled and range-limited;
    /// eight columns (then eight rows) at a time, one per vector lane.
    /// </summary>
    static class Idct
    {
        const int ConstBits = 13, Pass1Bits = 2;

        public static void Block(short[] coefficients, int[] quant, Span<byte> output, int stride)
        {
            Span<int> rows = stackalloc int[64];
            for (int k = 0; k < 64; k++) rows[k] = coefficients[k] * quant[k];
            var (c0, c1, c2, c3, c4, c5, c6, c7) = Butterfly(Row(rows, 0), Row(rows, 1), Row(rows, 2), Row(rows, 3), Row(rows, 4), Row(rows, 5), Row(rows, 6), Row(rows, 7),
                ConstBits - Pass1Bits);
            Transpose(rows, c0, c1, c2, c3, c4, c5, c6, c7);
            var (o0, o1, o2, o3, o4, o5, o6, o7) = Butterfly(Row(rows, 0), Row(rows, 1), Row(rows, 2), Row(rows, 3), Row(rows, 4), Row(rows, 5), Row(rows, 6), Row(rows, 7),
                ConstBits + Pass1Bits + 3);
            Transpose(rows, o0, o1, o2, o3, o4, o5, o6, o7);
            Store(rows, 0, output, stride);
            Store(rows, 4, output, stride);
        }

        // Rows first..first+3, range-limited, as bytes. The post-IDCT range limit: v + 128 clamped to 0..255 for v in
        // −512..511; libjpeg's table is indexed by v & 1023, so outside that range it wraps around, and so does this (the
        // low 10 bits read as a signed value).
        static void Store(Span<int> rows, int first, Span<byte> output, int stride)
        {
            static Vector256<short> Pair(Vector256<int> a, Vector256<int> b) => Vector256.Narrow(Limited(a), Limited(b));
            var bytes = Vector256.Narrow(Pair(Row(rows, first), Row(rows, first + 1)), Pair(Row(rows, first + 2), Row(rows, first + 3))).AsByte().AsUInt64();
            for (int r = 0; r < 4; r++) MemoryMarshal.Write(output.Slice((first + r) * stride, 8), bytes[r]);
        }

        static Vector256<int> Limited(Vector256<int> v) =>
            Vector256.Min(Vector256.Max(((v + Vector256.Create(512)) & Vector256.Create(1023)) - Vector256.Create(384), Vector256<int>.Zero), Vector256.Create(255));

        static Vector256<int> Row(Span<int> values, int row) => Vector256.Create<int>(values.Slice(row * 8, 8));

        static void Transpose(Span<int> into, Vector256<int> r0, Vector256<int> r1, Vector256<int> r2, Vector256<int> r3, Vector256<int> r4, Vector256<int> r5, Vector256<int> r6, Vector256<int> r7)
        {
            // Pairs of rows interleaved, then pairs of pairs, then the 128-bit halves swapped into place.
            Vector256<long> t0 = Avx2.UnpackLow(r0, r1).AsInt64(), t1 = Avx2.UnpackHigh(r0, r1).AsInt64(), t2 = Avx2.UnpackLow(r2, r3).AsInt64(), t3 = Avx2.UnpackHigh(r2, r3).AsInt64();
            Vector256<long> t4 = Avx2.UnpackLow(r4, r5).AsInt64(), t5 = Avx2.UnpackHigh(r4, r5).AsInt64(), t6 = Avx2.UnpackLow(r6, r7).AsInt64(), t7 = Avx2.UnpackHigh(r6, r7).AsInt64();
            var u0 = Avx2.UnpackLow(t0, t2).AsInt32();
            var u1 = Avx2.UnpackHigh(t0, t2).AsInt32();
            var u2 = Avx2.UnpackLow(t1, t3).AsInt32();
            var u3 = Avx2.UnpackHigh(t1, t3).AsInt32();
            var u4 = Avx2.UnpackLow(t4, t6).AsInt32();
            var u5 = Avx2.UnpackHigh(t4, t6).AsInt32();
            var u6 = Avx2.UnpackLow(t5, t7).AsInt32();
            var u7 = Avx2.UnpackHigh(t5, t7).AsInt32();
            Avx2.Permute2x128(u0, u4, 0x20).CopyTo(into);
            Avx2.Permute2x128(u1, u5, 0x20).CopyTo(into[8..]);
            Avx2.Permute2x128(u2, u6, 0x20).CopyTo(into[16..]);
            Avx2.Permute2x128(u3, u7, 0x20).CopyTo(into[24..]);
            Avx2.Permute2x128(u0, u4, 0x31).CopyTo(into[32..]);
            Avx2.Permute2x128(u1, u5, 0x31).CopyTo(into[40..]);
            Avx2.Permute2x128(u2, u6, 0x31).CopyTo(into[48..]);
            Avx2.Permute2x128(u3, u7, 0x31).CopyTo(into[56..]);
        }

        // The 8-point inverse DCT of inputs 0..7 (the even part from 0, 2, 4, 6, the odd from 1, 3, 5, 7), in each lane,
        // each output rounded and shifted right by `shift`.
        static (Vector256<int>, Vector256<int>, Vector256<int>, Vector256<int>, Vector256<int>, Vector256<int>, Vector256<int>, Vector256<int>) Butterfly(
            Vector256<int> i0, Vector256<int> i1, Vector256<int> i2, Vector256<int> i3, Vector256<int> i4, Vector256<int> i5, Vector256<int> i6, Vector256<int> i7, int shift)
        {
            var z1 = (i2 + i6) * 4433;                                   // 0.541196100 in 13 fraction bits
            var t2 = z1 - i6 * 15137;                                    // 1.847759065
            var t3 = z1 + i2 * 6270;                                     // 0.765366865
            var t0 = Vector256.ShiftLeft(i0 + i4, ConstBits);
            var t1 = Vector256.ShiftLeft(i0 - i4, ConstBits);
            var t10 = t0 + t3;
            var t13 = t0 - t3;
            var t11 = t1 + t2;
            var t12 = t1 - t2;

            var a1 = i7 + i1;
            var a2 = i5 + i3;
            var a3 = i7 + i3;
            var a4 = i5 + i1;
            var z5 = (a3 + a4) * 9633;                                   // 1.175875602
            var o0 = i7 * 2446;                                          // 0.298631336
            var o1 = i5 * 16819;                                         // 2.053119869
            var o2 = i3 * 25172;                                         // 3.072711026
            var o3 = i1 * 12299;                                         // 1.501321110
            a1 *= -7373;                                                 // −0.899976223
            a2 *= -20995;                                                // −2.562915447
            a3 = a3 * -16069 + z5;                                       // −1.961570560
            a4 = a4 * -3196 + z5;                                        // −0.390180644
            o0 += a1 + a3;
            o1 += a2 + a4;
            o2 += a2 + a3;
            o3 += a1 + a4;

            var half = Vector256.Create(1 << (shift - 1));
            Vector256<int> Out(Vector256<int> value) => Vector256.ShiftRightArithmetic(value + half, shift);
            return (Out(t10 + o3), Out(t11 + o2), Out(t12 + o1), Out(t13 + o0), Out(t13 - o0), Out(t12 - o1), Out(t11 - o2), Out(t10 - o3));
        }
    }
}
