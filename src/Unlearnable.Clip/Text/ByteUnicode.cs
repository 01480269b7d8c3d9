namespace Unlearnable.Clip.Text;

/// <summary>
/// GPT-2/CLIP's reversible byte → printable-character table: printable Latin-1 bytes map to
/// themselves, the other 68 bytes to code points from U+0100 upwards, in byte order.
/// </summary>
static class ByteUnicode
{
    public static char[] Table()
    {
        var table = new char[256];
        int next = 256;
        for (int b = 0; b < 256; b++)
        {
            bool printable = b is >= '!' and <= '~' or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF;
            table[b] = printable ? (char)b : (char)next++;
        }
        return table;
    }

    /// <summary>The 256 characters in CLIP's vocabulary order: printable bytes first, then the remapped ones.</summary>
    public static IEnumerable<char> VocabularyOrder()
    {
        var table = Table();
        return table.Where(c => c < 256).Concat(table.Where(c => c >= 256));
    }
}
