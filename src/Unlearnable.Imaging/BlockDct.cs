using System.Runtime.Intrinsics;

namespace Unlearnable.Imaging;

/// <summary>
/// The JPEG 8 × 8 DCT, F = A f Aᵀ (A: <see cref="JpegStandard.DctBasis"/>), as two 8 × 8 matrix products, four values per vector; each sum is taken in the same order as written.
/// </summary>
static class BlockDct
{
    static readonly double[] Transposed = [.. Enumerable.Range(0, 64).Select(i => JpegStandard.DctBasis[i % 8, i / 8])];   // [x, u] = A[u, x]
    static readonly double[] Basis = [.. Enumerable.Range(0, 64).Select(i => JpegStandard.DctBasis[i / 8, i % 8])];        // [v, y] = A[v, y]

    public static void Forward(ReadOnlySpan<double> samples, Span<double> frequencies)
    {
        Span<double> rows = stackalloc double[64];
        Multiply(samples, Transposed, rows);      // [y, u] = Σx f[y, x] A[u, x]
        Multiply(Basis, rows, frequencies);       // [v, u] = Σy A[v, y] rows[y, u]
    }

    // product = left × right for 8 × 8 matrices, a row of four products per vector.
    static void Multiply(ReadOnlySpan<double> left, ReadOnlySpan<double> right, Span<double> product)
    {
        for (int i = 0; i < 8; i++)
        {
            var low = Vector256<double>.Zero;
            var high = Vector256<double>.Zero;
            for (int k = 0; k < 8; k++)
            {
                var weight = Vector256.Create(left[i * 8 + k]);
                low += weight * Vector256.Create(right.Slice(k * 8, 4));
                high += weight * Vector256.Create(right.Slice(k * 8 + 4, 4));
            }
            low.CopyTo(product.Slice(i * 8, 4));
            high.CopyTo(product.Slice(i * 8 + 4, 4));
        }
    }
}
