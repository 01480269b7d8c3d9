namespace Unlearnable.Imaging;

/// <summary>
/// An optimal JPEG Huffman table for counted symbol frequencies (ITU-T T.81 Annex K.2, as libjpeg
/// builds it): code lengths from repeatedly merging the two least frequent symbols, lengths over 16
/// bits folded back, one code point reserved so that no code is all ones; codes then assigned
/// canonically (Annex C) from the count per length and the symbols sorted by length.
/// </summary>
public sealed class HuffmanTable
{
    /// <summary>Number of codes of each length 1..16 (index 0 unused), as a DHT segment lists them.</summary>
    public byte[] Counts { get; } = new byte[17];
    /// <summary>The symbols in order of code length, then value, as a DHT segment lists them.</summary>
    public byte[] Symbols { get; }
    /// <summary>Per symbol: its code and the code's length (0: the symbol never occurs).</summary>
    public ushort[] Codes { get; } = new ushort[256];
    public byte[] Lengths { get; } = new byte[256];

    public HuffmanTable(ReadOnlySpan<long> frequencies)
    {
        const int Longest = 256;  // before folding: 257 symbols merged one at a time (a crafted upload can pass 32)
        var freq = new long[257];
        frequencies.CopyTo(freq);
        freq[256] = 1;            // the reserved code point
        var size = new int[257];
        var next = new int[257];
        Array.Fill(next, -1);
        while (true)
        {
            // The least frequent symbol (the larger value on ties), then the next least frequent.
            int c1 = -1, c2 = -1;
            for (int i = 0; i <= 256; i++)
                if (freq[i] > 0 && (c1 < 0 || freq[i] <= freq[c1])) c1 = i;
            for (int i = 0; i <= 256; i++)
                if (freq[i] > 0 && i != c1 && (c2 < 0 || freq[i] <= freq[c2])) c2 = i;
            if (c2 < 0) break;
            freq[c1] += freq[c2];
            freq[c2] = 0;
            // Every symbol in both merged trees gets one bit longer; c2's chain joins c1's.
            size[c1]++;
            while (next[c1] >= 0) size[c1 = next[c1]]++;
            next[c1] = c2;
            size[c2]++;
            while (next[c2] >= 0) size[c2 = next[c2]]++;
        }

        var bits = new int[Longest + 1];
        for (int i = 0; i <= 256; i++)
            if (size[i] > 0) bits[size[i]]++;
        // Folds codes longer than 16 bits: a pair at length i becomes one at i − 1 and splits a code at a shorter length j.
        for (int i = Longest; i > 16; i--)
            while (bits[i] > 0)
            {
                int j = i - 2;
                while (bits[j] == 0) j--;
                bits[i] -= 2;
                bits[i - 1]++;
                bits[j + 1] += 2;
                bits[j]--;
            }
        int longest = 16;
        while (bits[longest] == 0) longest--;
        bits[longest]--;   // drops the reserved code point, which has the longest code
        for (int i = 1; i <= 16; i++) Counts[i] = (byte)bits[i];

        var symbols = new List<byte>();
        for (int length = 1; length <= Longest; length++)
            for (int s = 0; s < 256; s++)
                if (size[s] == length) symbols.Add((byte)s);
        Symbols = [.. symbols];

        // Canonical codes: consecutive within a length, shifted left by one for each longer length.
        int code = 0, p = 0;
        for (int length = 1; length <= 16; length++, code <<= 1)
            for (int n = 0; n < Counts[length]; n++, p++)
            {
                Codes[Symbols[p]] = (ushort)code++;
                Lengths[Symbols[p]] = (byte)length;
            }
    }
}
