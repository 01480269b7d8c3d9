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
