using System.Collections.Concurrent;
using Unlearnable.Clip.Runtime;
using static TorchSharp.torch;

namespace Unlearnable.Protection.Robustness;

/// <summary>
/// JPEG as a differentiable function of the pixels, so PGD can see what a re-encode keeps:
/// RGB → YCbCr (JFIF), 4:2:0 chroma (2×2 mean, repeated back), 8×8 block DCT, division by libjpeg's
/// tables at the chosen quality, rounding, and the way back. Rounding passes its gradient straight
/// through (BPDA): the forward pass is the real quantisation, the backward pass sees the identity.
/// </summary>
public static class DifferentiableJpeg
{
    // ITU-T T.81 Annex K.1 (luminance) and K.2 (chrominance), natural order.
    public static readonly int[] Luminance =
    [
        16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
        18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92, 49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
    ];
    public static readonly int[] Chrominance =
    [
        17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99, 24, 26, 56, 99, 99, 99, 99, 99, 47, 66, 99, 99, 99, 99, 99, 99,
        99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99,
    ];

    static readonly float[] ToYcc = [0.299f, 0.587f, 0.114f, -0.168736f, -0.331264f, 0.5f, 0.5f, -0.418688f, -0.081312f];
    static readonly ConcurrentDictionary<(int Quality, string Device), (Tensor Luma, Tensor Chroma)> Tables = new();
    static readonly ConcurrentDictionary<string, (Tensor Dct, Tensor ToYcc, Tensor FromYcc)> Constants = new();

    /// <summary>libjpeg's table for a quality: scale = q &lt; 50 ? 5000 / q : 200 − 2q, entries (t·scale + 50) / 100 in 1..255.</summary>
    public static int[] ScaledTable(int[] standard, int quality)
    {
        if (quality is < 1 or > 100) throw new ArgumentOutOfRangeException(nameof(quality), quality, "JPEG quality must be in 1..100");
        int scale = quality < 50 ? 5000 / quality : 200 - 2 * quality;
        return standard.Select(t => Math.Clamp((t * scale + 50) / 100, 1, 255)).ToArray();
    }

    /// <param name="images01">[b, 3, H, W] in [0, 1]; H and W are padded (edge repeated) to multiples of 16 and cropped back.</param>
    public static Tensor Apply(Tensor images01, int quality)
    {
        using var scope = NewDisposeScope();
        long h = images01.shape[2], w = images01.shape[3];
        long ph = (16 - h % 16) % 16, pw = (16 - w % 16) % 16;
        var x = ph + pw == 0 ? images01 : nn.functional.pad(images01, [0, pw, 0, ph], TorchSharp.PaddingModes.Replicate);
        var (dct, toYcc, fromYcc) = ConstantsOn(x.device);
        var (luma, chroma) = TablesFor(quality, x.device);

        // [b, 3, H, W] in 0..255 → Y, Cb, Cr (offsets cancel on the way back, so none are added).
        var ycc = einsum("ij,bjhw->bihw", toYcc, x.Times(255));
        var y = Quantise(ycc.narrow(1, 0, 1), dct, luma);
        var subsampled = nn.functional.avg_pool2d(ycc.narrow(1, 1, 2), 2);
        var c = Quantise(subsampled, dct, chroma).repeat_interleave(2, 2).repeat_interleave(2, 3);
        var rgb = einsum("ij,bjhw->bihw", fromYcc, cat([y, c], 1)).Times(1.0 / 255);
        var back = rgb.narrow(2, 0, h).narrow(3, 0, w);
        // Clamping to the pixel range, again with a straight-through gradient.
        return back.Plus(back.Clamped(0, 1).Minus(back).detach()).MoveToOuterDisposeScope();
    }

    // Block DCT (D X Dᵀ per 8×8 block), divide by the table, round, multiply back, inverse DCT.
    static Tensor Quantise(Tensor planes, Tensor dct, Tensor table)
    {
        long b = planes.shape[0], c = planes.shape[1], h = planes.shape[2], w = planes.shape[3];
        var blocks = planes.reshape(b, c, h / 8, 8, w / 8, 8).permute(0, 1, 2, 4, 3, 5);
        var coefficients = dct.matmul(blocks).matmul(dct.T).div(table);
        var rounded = coefficients.Plus(coefficients.round().Minus(coefficients).detach()).mul(table);
        var pixels = dct.T.matmul(rounded).matmul(dct);
        return pixels.permute(0, 1, 2, 4, 3, 5).reshape(b, c, h, w);
    }

    static (Tensor Luma, Tensor Chroma) TablesFor(int quality, Device device) => Tables.GetOrAdd((quality, device.ToString()), _ =>
        (Table(ScaledTable(Luminance, quality), device), Table(ScaledTable(Chrominance, quality), device)));

    static Tensor Table(int[] values, Device device) => tensor(values.Select(v => (float)v).ToArray(), [8, 8]).to(device).DetachFromDisposeScope();

    static (Tensor Dct, Tensor ToYcc, Tensor FromYcc) ConstantsOn(Device device) => Constants.GetOrAdd(device.ToString(), _ =>
    {
        var basis = new float[64];
        for (int u = 0; u < 8; u++)
            for (int x = 0; x < 8; x++)
                basis[u * 8 + x] = (float)((u == 0 ? Math.Sqrt(0.5) : 1) / 2 * Math.Cos((2 * x + 1) * u * Math.PI / 16));
        var toYcc = tensor(ToYcc, [3, 3]);
        return (tensor(basis, [8, 8]).to(device).DetachFromDisposeScope(), toYcc.to(device).DetachFromDisposeScope(),
                linalg.inv(toYcc).to(device).DetachFromDisposeScope());
    });
}
