using System.Collections.Concurrent;
using Unlearnable.Clip.Runtime;
using Unlearnable.Imaging;
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
    static readonly ConcurrentDictionary<(int Quality, string Device), (Tensor Luma, Tensor Chroma)> Tables = new();
    static readonly ConcurrentDictionary<string, (Tensor Dct, Tensor ToYcc, Tensor FromYcc)> Constants = new();

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
        var y = Quantize(ycc.narrow(1, 0, 1), dct, luma);
        var subsampled = nn.functional.avg_pool2d(ycc.narrow(1, 1, 2), 2);
        var c = Quantize(subsampled, dct, chroma).repeat_interleave(2, 2).repeat_interleave(2, 3);
        var rgb = einsum("ij,bjhw->bihw", fromYcc, cat([y, c], 1)).Times(1.0 / 255);
        var back = rgb.narrow(2, 0, h).narrow(3, 0, w);
        // Clamping to the pixel range, again with a straight-through gradient.
        return back.Plus(back.Clamped(0, 1).Minus(back).detach()).MoveToOuterDisposeScope();
    }

    // Block DCT (D X Dᵀ per 8×8 block), divide by the table, round, multiply back, inverse DCT.
    static Tensor Quantize(Tensor planes, Tensor dct, Tensor table)
    {
        long b = planes.shape[0], c = planes.shape[1], h = planes.shape[2], w = planes.shape[3];
        var blocks = planes.reshape(b, c, h / 8, 8, w / 8, 8).permute(0, 1, 2, 4, 3, 5);
        var coefficients = dct.matmul(blocks).matmul(dct.T).div(table);
        var rounded = coefficients.Plus(coefficients.round().Minus(coefficients).detach()).mul(table);
        var pixels = dct.T.matmul(rounded).matmul(dct);
        return pixels.permute(0, 1, 2, 4, 3, 5).reshape(b, c, h, w);
    }

    static (Tensor Luma, Tensor Chroma) TablesFor(int quality, Device device) => Tables.GetOrAdd((quality, device.ToString()), _ =>
        (Table(JpegStandard.ScaledTable(JpegStandard.Luminance, quality), device), Table(JpegStandard.ScaledTable(JpegStandard.Chrominance, quality), device)));

    static Tensor Table(int[] values, Device device) => tensor(values.Select(v => (float)v).ToArray(), [8, 8]).to(device).DetachFromDisposeScope();

    static (Tensor Dct, Tensor ToYcc, Tensor FromYcc) ConstantsOn(Device device) => Constants.GetOrAdd(device.ToString(), _ =>
    {
        var basis = JpegStandard.DctBasis.Cast<double>().Select(v => (float)v).ToArray();
        var toYcc = tensor(JpegStandard.RgbToYcc.SelectMany(row => row).ToArray(), [3, 3]);
        return (tensor(basis, [8, 8]).to(device).DetachFromDisposeScope(), toYcc.to(device).DetachFromDisposeScope(),
                linalg.inv(toYcc).to(device).DetachFromDisposeScope());
    });
}
