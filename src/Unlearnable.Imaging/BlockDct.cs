using System.Runtime.Intrinsics;

namespace Unlearnable.Imaging;

/// <summary>
/// The JPEG 8 × 8 DCT, F = A f Aᵀ (A: <see cref="JpegStandard.DctBasis"/>), as two 8 × 8 matrix products in single
/// precision, a row of eight per vector: the noise it transforms is quantised to steps of at least 1, so float's
/// 7 digits are far more than it needs.
/// </summary>
static class BlockDct
{
    static readonly float[] Transposed = [.. Enumerable.Range(0, 64).Select(i => (float)JpegStandard.DctBasis[i % 8, i / 8])];   // [x, u] = A[u, x]
    static readonly float[] Basis = [.. Enumerable.Range(0, 64).Select(i => (float)JpegStandard.DctBasis[i / 8, i % 8])];        // [v, y] = A[v, y]

    public static void Forward(ReadOnlySpan<float> samples, Span<float> frequencies)
    {
        Span<float> rows = stackalloc float[64];
        Multiply(samples, Transposed, rows);      // [y, u] = Σx f[y, x] A[u, x]
        Multiply(Basis, rows, frequencies);       // [v, u] = Σy A[v, y] rows[y, u]
    }

    // product = left × right for 8 × 8 matrices: each product row is a weighted sum of right's rows.
    static void Multiply(ReadOnlySpan<float> left, ReadOnlySpan<float> right, Span<float> product)
    {
        var r0 = Vector256.Create(right[..8]);
        var r1 = Vector256.Create(right.Slice(8, 8));
        var r2 = Vector256.Create(right.Slice(16, 8));
        var r3 = Vector256.Create(right.Slice(24, 8));
        var r4 = Vector256.Create(right.Slice(32, 8));
        var r5 = Vector256.Create(right.Slice(40, 8));
        var r6 = Vector256.Create(right.Slice(48, 8));
        var r7 = Vector256.Create(right.Slice(56, 8));
        for (int i = 0; i < 8; i++)
        {
            var l = left.Slice(i * 8, 8);
            var sum = l[0] * r0 + l[1] * r1 + l[2] * r2 + l[3] * r3 + l[4] * r4 + l[5] * r5 + l[6] * r6 + l[7] * r7;
            sum.CopyTo(product.Slice(i * 8, 8));
        }
    }
}
