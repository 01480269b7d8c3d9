namespace Unlearnable.Imaging;

/// <summary>
/// The quantisation tables of a JPEG (its DQT segments, read up to the first scan), in natural
/// (row-major) order, and the quality libjpeg would have been asked for to make them: answers
/// that keep the upload's tables or quality keep roughly its file size.
/// </summary>
public sealed class JpegTables
{
    static readonly double StandardLuminanceSum = JpegStandard.Luminance.Sum();

    readonly Dictionary<int, int[]> _tables;
    JpegTables(Dictionary<int, int[]> tables) => _tables = tables;

    /// <summary>Table <paramref name="id"/> (0–3) in natural order, or null if the file defines none.</summary>
    public int[]? Table(int id) => _tables.GetValueOrDefault(id);

    /// <summary>1..100 from the luminance table (0), inverting libjpeg's scaling of the standard table; null without one.</summary>
    public int? Quality
    {
        get
        {
            if (Table(0) is not { } luminance) return null;
            double scale = 100 * luminance.Sum() / StandardLuminanceSum;   // inverts JpegStandard.QualityScale
            double quality = scale <= 100 ? (200 - scale) / 2 : 5000 / scale;
            return (int)Math.Clamp(Math.Round(quality), 1, 100);
        }
    }

    /// <summary>The tables of a JPEG file, or null when the bytes are not a JPEG or a DQT segment is malformed.</summary>
    public static JpegTables? Read(ReadOnlySpan<byte> jpeg)
    {
        if (jpeg.Length < 4 || jpeg[0] != 0xFF || jpeg[1] != 0xD8) return null;
        var tables = new Dictionary<int, int[]>();
        int pos = 2;
        while (pos + 4 <= jpeg.Length && jpeg[pos] == 0xFF)
        {
            byte marker = jpeg[pos + 1];
            if (marker is 0xD9 or 0xDA) break;                       // end of image, start of scan: tables come before
            int length = (jpeg[pos + 2] << 8) | jpeg[pos + 3];
            if (length < 2 || pos + 2 + length > jpeg.Length) return null;
            if (marker == 0xDB && !ReadSegment(jpeg.Slice(pos + 4, length - 2), tables)) return null;
            pos += 2 + length;
        }
        return tables.Count == 0 ? null : new JpegTables(tables);
    }

    static bool ReadSegment(ReadOnlySpan<byte> segment, Dictionary<int, int[]> tables)
    {
        int pos = 0;
        while (pos < segment.Length)
        {
            int precision = segment[pos] >> 4, id = segment[pos] & 0x0F, entry = precision == 0 ? 1 : 2;
            if (id > 3 || pos + 1 + 64 * entry > segment.Length) return false;
            var table = new int[64];
            for (int k = 0; k < 64; k++)
                table[JpegStandard.NaturalOrder[k]] = entry == 1 ? segment[pos + 1 + k] : (segment[pos + 1 + 2 * k] << 8) | segment[pos + 2 + 2 * k];
            if (table.Any(q => q == 0)) return false;
            tables[id] = table;
            pos += 1 + 64 * entry;
        }
        return true;
    }
}
