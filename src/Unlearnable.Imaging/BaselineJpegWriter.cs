using System.Buffers.Binary;
using System.Numerics;
using BitMiracle.LibJpeg.Classic;

namespace Unlearnable.Imaging;

/// <summary>
/// Writes quantised DCT coefficients as a baseline sequential JPEG (ITU-T T.81) with Huffman codes
/// optimised for them: one pass counts the symbols, a second writes them. Markers: JFIF, the
/// quantisation tables, the frame, the Huffman tables (one pair for luma, one shared by the chroma
/// components, as libjpeg assigns them), one scan. No metadata. Two to three times quicker than
/// LibJpeg.NET's writer of the same coefficients (measured 1.5 against 4.0 ms at 512 × 384), which a
/// published post pays on each pass.
/// </summary>
static class BaselineJpegWriter
{
    public sealed record Plane(int Id, int QuantTable, BlockGrid Grid);

    /// <returns>Null when the coefficients cannot be written as baseline JPEG (a table entry or a value out of its range).</returns>
    public static byte[]? TryWrite(int width, int height, IReadOnlyList<Plane> planes, JpegTables tables, (byte Unit, int X, int Y) density)
    {
        var quant = planes.Select(p => p.QuantTable).Distinct().ToDictionary(id => id, id => tables.Table(id)!);
        if (quant.Values.Any(t => t.Any(q => q > 255)) || width > 65535 || height > 65535) return null;
        int tableCount = planes.Count == 1 ? 1 : 2;
        var dc = new long[tableCount][];
        var ac = new long[tableCount][];
        for (int t = 0; t < tableCount; t++) (dc[t], ac[t]) = (new long[256], new long[256]);
        var counting = new Scan(planes, width, height, new SymbolCounter(dc, ac));
        if (!counting.Run()) return null;
        var dcTables = dc.Select(f => new HuffmanTable(f)).ToArray();
        var acTables = ac.Select(f => new HuffmanTable(f)).ToArray();

        var output = new Output(64 * 1024 + width * height / 4);
        output.Marker(0xD8);
        output.Segment(0xE0, [.. "JFIF\0"u8, 1, 1, density.Unit, (byte)(density.X >> 8), (byte)density.X, (byte)(density.Y >> 8), (byte)density.Y, 0, 0]);
        foreach (var (id, table) in quant)   // in the order components first use them, as libjpeg writes them
            output.Segment(0xDB, [(byte)id, .. JpegStandard.NaturalOrder.Select(n => (byte)table[n])]);
        output.Segment(0xC0, [8, (byte)(height >> 8), (byte)height, (byte)(width >> 8), (byte)width, (byte)planes.Count,
            .. planes.SelectMany(p => new[] { (byte)p.Id, (byte)(p.Grid.H << 4 | p.Grid.V), (byte)p.QuantTable })]);
        for (int t = 0; t < tableCount; t++)
        {
            output.Segment(0xC4, [(byte)t, .. dcTables[t].Counts[1..], .. dcTables[t].Symbols]);
            output.Segment(0xC4, [(byte)(0x10 | t), .. acTables[t].Counts[1..], .. acTables[t].Symbols]);
        }
        output.Segment(0xDA, [(byte)planes.Count, .. planes.SelectMany((p, i) => new[] { (byte)p.Id, (byte)(Table(i) << 4 | Table(i)) }), 0, 63, 0]);
        var bits = new BitWriter(output, dcTables, acTables);
        new Scan(planes, width, height, bits).Run();
        bits.Flush();
        output.Marker(0xD9);
        return output.ToArray();
    }

    static int Table(int plane) => plane == 0 ? 0 : 1;

    /// <summary>What a scan hands each symbol to: counted on the first pass, written on the second.</summary>
    interface ISymbols
    {
        /// <param name="value">The value coded in <paramref name="category"/>'s extra bits (none when 0).</param>
        void Dc(int table, int category, int value);
        void Ac(int table, int symbol, int category, int value);
    }

    /// <summary>The blocks in scan order (interleaved minimum coded units, or plain rows for one component), coded.</summary>
    sealed class Scan(IReadOnlyList<Plane> planes, int width, int height, ISymbols symbols)
    {
        readonly int[] _lastDc = new int[planes.Count];

        public bool Run()
        {
            if (planes.Count == 1)
            {
                var g = planes[0].Grid;
                for (int by = 0; by < g.BlocksHigh; by++)
                    for (int bx = 0; bx < g.BlocksWide; bx++)
                        if (!Block(0, g.Blocks[by][bx])) return false;
                return true;
            }
            int maxH = planes.Max(p => p.Grid.H), maxV = planes.Max(p => p.Grid.V);
            int columns = (width + 8 * maxH - 1) / (8 * maxH), rows = (height + 8 * maxV - 1) / (8 * maxV);
            for (int row = 0; row < rows; row++)
                for (int column = 0; column < columns; column++)
                    for (int i = 0; i < planes.Count; i++)
                    {
                        var g = planes[i].Grid;
                        for (int v = 0; v < g.V; v++)
                            for (int h = 0; h < g.H; h++)
                            {
                                if (g.InUnit(column, row, h, v, out int bx, out int by))
                                {
                                    if (!Block(i, g.Blocks[by][bx])) return false;
                                }
                                else Dummy(i);
                            }
                    }
            return true;
        }

        // Past the component's edge a unit holds dummy blocks: the last DC again, no AC (as libjpeg writes them).
        void Dummy(int plane)
        {
            symbols.Dc(Table(plane), 0, 0);
            symbols.Ac(Table(plane), 0x00, 0, 0);   // end of block
        }

        // DC as the difference from the component's last, AC as runs of zeros before each non-zero value (16 zeros: ZRL).
        bool Block(int plane, JBLOCK block)
        {
            int table = Table(plane);
            int diff = block[0] - _lastDc[plane];
            _lastDc[plane] = block[0];
            int category = Category(diff);
            if (category > 11) return false;
            symbols.Dc(table, category, diff);
            int run = 0;
            for (int k = 1; k < 64; k++)
            {
                int value = block[JpegStandard.NaturalOrder[k]];
                if (value == 0)
                {
                    run++;
                    continue;
                }
                for (; run > 15; run -= 16) symbols.Ac(table, 0xF0, 0, 0);
                category = Category(value);
                if (category > 10) return false;
                symbols.Ac(table, run << 4 | category, category, value);
                run = 0;
            }
            if (run > 0) symbols.Ac(table, 0x00, 0, 0);
            return true;
        }

        static int Category(int value) => value == 0 ? 0 : 32 - BitOperations.LeadingZeroCount((uint)Math.Abs(value));
    }

    sealed class SymbolCounter(long[][] dc, long[][] ac) : ISymbols
    {
        public void Dc(int table, int category, int value) => dc[table][category]++;
        public void Ac(int table, int symbol, int category, int value) => ac[table][symbol]++;
    }

    /// <summary>Codes and value bits, most significant first; a 0xFF byte in the data is followed by 0x00.</summary>
    sealed class BitWriter(Output output, HuffmanTable[] dc, HuffmanTable[] ac) : ISymbols
    {
        ulong _buffer;
        int _count;

        public void Dc(int table, int category, int value) => Put(dc[table], category, category, value);
        public void Ac(int table, int symbol, int category, int value) => Put(ac[table], symbol, category, value);

        // A negative value is written as value − 1 in its category's bits (its one's complement).
        void Put(HuffmanTable table, int symbol, int category, int value)
        {
            int length = table.Lengths[symbol];
            ulong bits = table.Codes[symbol];
            if (category > 0)
            {
                bits = bits << category | (uint)(value < 0 ? value - 1 : value) & ((1u << category) - 1);
                length += category;
            }
            _buffer = _buffer << length | bits;
            _count += length;
            while (_count >= 8)
            {
                byte b = (byte)(_buffer >> (_count -= 8));
                output.Byte(b);
                if (b == 0xFF) output.Byte(0);
            }
        }

        /// <summary>Pads the last byte with one bits.</summary>
        public void Flush()
        {
            if (_count == 0) return;
            int pad = 8 - _count;
            byte b = (byte)(_buffer << pad | (1ul << pad) - 1);
            output.Byte(b);
            if (b == 0xFF) output.Byte(0);
            _count = 0;
        }
    }

    sealed class Output(int capacity)
    {
        byte[] _bytes = new byte[capacity];
        int _length;

        public void Byte(byte b)
        {
            if (_length == _bytes.Length) Array.Resize(ref _bytes, 2 * _bytes.Length);
            _bytes[_length++] = b;
        }

        public void Marker(byte code)
        {
            Byte(0xFF);
            Byte(code);
        }

        public void Segment(byte code, ReadOnlySpan<byte> body)
        {
            Marker(code);
            Span<byte> length = stackalloc byte[2];
            BinaryPrimitives.WriteUInt16BigEndian(length, (ushort)(body.Length + 2));
            foreach (var b in length) Byte(b);
            foreach (var b in body) Byte(b);
        }

        public byte[] ToArray() => _bytes[.._length];
    }
}
