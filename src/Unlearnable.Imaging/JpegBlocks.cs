using System.Runtime.CompilerServices;
using BitMiracle.LibJpeg.Classic;

namespace Unlearnable.Imaging;

/// <summary>
/// A LibJpeg.NET block's 64 coefficients (natural order) as the array it keeps them in: its public indexer costs a
/// call per value, which passes over every block of a photo notice. Where a LibJpeg.NET keeps them elsewhere,
/// <see cref="Accessible"/> is false and callers use the indexer.
/// </summary>
static class JpegBlocks
{
    [UnsafeAccessor(UnsafeAccessorKind.Field, Name = "data")]
    static extern ref short[] Data(JBLOCK block);

    public static readonly bool Accessible = Probe();

    public static short[] Values(JBLOCK block) => Data(block);

    static bool Probe()
    {
        try { return Data(new JBLOCK()) is { Length: 64 }; }
        catch (MissingFieldException) { return false; }
    }
}

/// <summary>
/// One component's quantised blocks: rows of blocks (natural order), how many of them hold the picture's samples, and
/// its sampling factors, i.e. how many blocks across and down it has in each coded unit.
/// </summary>
sealed record BlockGrid(JBLOCK[][] Blocks, int BlocksWide, int BlocksHigh, int H, int V)
{
    /// <summary>The position of block (h, v) of coded unit (column, row); false for a padding block past the component's edge.</summary>
    public bool InUnit(int column, int row, int h, int v, out int bx, out int by)
    {
        bx = column * H + h;
        by = row * V + v;
        return bx < BlocksWide && by < BlocksHigh;
    }
}
