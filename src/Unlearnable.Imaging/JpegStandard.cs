namespace Unlearnable.Imaging;

/// <summary>
/// The constants of baseline JPEG that both the coefficient codec and the differentiable JPEG
/// work with: the standard quantisation tables, libjpeg's quality scaling, the 8×8 DCT basis and
/// JFIF's RGB → YCbCr matrix.
/// </summary>
public static class JpegStandard
{
    /// <summary>ITU-T T.81 Annex K.1, natural order.</summary>
    public static readonly int[] Luminance =
    [
        16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
        18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92, 49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
    ];

    /// <summary>ITU-T T.81 Annex K.2, natural order.</summary>
    public static readonly int[] Chrominance =
    [
        17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99, 24, 26, 56, 99, 99, 99, 99, 99, 47, 66, 99, 99, 99, 99, 99, 99,
        99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99,
    ];

    /// <summary>Zig-zag position k holds the coefficient at natural (row-major) index NaturalOrder[k] (ITU-T T.81 Figure A.6).</summary>
    public static readonly int[] NaturalOrder =
    [
        0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21, 28,
        35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
    ];

    /// <summary>Rows Y, Cb, Cr of JFIF's RGB weights (the 128 offsets left out: differences have none).</summary>
    public static readonly float[][] RgbToYcc = [[0.299f, 0.587f, 0.114f], [-0.168736f, -0.331264f, 0.5f], [0.5f, -0.418688f, -0.081312f]];

    /// <summary>A[u, x] = c(u)/2 · cos((2x + 1)uπ/16), c(0) = 1/√2: the block DCT is F = A f Aᵀ.</summary>
    public static readonly double[,] DctBasis = Basis();

    /// <summary>libjpeg's scaling of the quality 50 scale by quality: <c>q &lt; 50 ? 5000 / q : 200 − 2q</c>, in percent.</summary>
    public static int QualityScale(int quality)
    {
        if (quality is < 1 or > 100) throw new ArgumentOutOfRangeException(nameof(quality), quality, "JPEG quality must be in 1..100");
        return quality < 50 ? 5000 / quality : 200 - 2 * quality;
    }

    /// <summary>libjpeg's table for a quality: entries (t·scale + 50) / 100, kept in 1..255.</summary>
    public static int[] ScaledTable(int[] standard, int quality)
    {
        int scale = QualityScale(quality);
        return standard.Select(t => Math.Clamp((t * scale + 50) / 100, 1, 255)).ToArray();
    }

    static double[,] Basis()
    {
        var a = new double[8, 8];
        for (int u = 0; u < 8; u++)
            for (int x = 0; x < 8; x++)
                a[u, x] = (u == 0 ? Math.Sqrt(0.5) : 1) / 2 * Math.Cos((2 * x + 1) * u * Math.PI / 16);
        return a;
    }
}
