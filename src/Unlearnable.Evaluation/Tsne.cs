namespace Unlearnable.Evaluation;

/// <summary>
/// Exact t-SNE (van der Maaten &amp; Hinton, 2008) for a few hundred points: Gaussian affinities
/// with a per-point bandwidth found by bisection to match the perplexity, symmetrised; Student-t
/// affinities in 2-D; gradient descent with momentum and early exaggeration. O(n²) per step,
/// which is fine for the held-out sets it draws.
/// </summary>
public static class Tsne
{
    public static (double X, double Y)[] Embed(double[][] points, int seed, double perplexity = 15, int iterations = 500)
    {
        int n = points.Length;
        if (n < 3) return points.Select((_, i) => ((double)i, 0.0)).ToArray();
        perplexity = Math.Min(perplexity, (n - 1) / 3.0);
        var p = Affinities(points, perplexity);

        var rng = new Random(seed);
        var y = new double[n, 2];
        var velocity = new double[n, 2];
        for (int i = 0; i < n; i++) for (int d = 0; d < 2; d++) y[i, d] = 1e-2 * Gaussian(rng);

        var q = new double[n, n];
        for (int iter = 0; iter < iterations; iter++)
        {
            double exaggeration = iter < 100 ? 12 : 1, momentum = iter < 250 ? 0.5 : 0.8, learningRate = Math.Max(n / 12.0, 50);
            double sum = 0;
            for (int i = 0; i < n; i++)
                for (int j = i + 1; j < n; j++)
                {
                    double dx = y[i, 0] - y[j, 0], dy = y[i, 1] - y[j, 1];
                    q[i, j] = q[j, i] = 1 / (1 + dx * dx + dy * dy);
                    sum += 2 * q[i, j];
                }
            for (int i = 0; i < n; i++)
            {
                double gx = 0, gy = 0;
                for (int j = 0; j < n; j++)
                {
                    if (i == j) continue;
                    // ∂C/∂yᵢ = 4 Σⱼ (pᵢⱼ − qᵢⱼ) (yᵢ − yⱼ) / (1 + ‖yᵢ − yⱼ‖²)
                    double force = (exaggeration * p[i, j] - q[i, j] / sum) * q[i, j];
                    gx += force * (y[i, 0] - y[j, 0]);
                    gy += force * (y[i, 1] - y[j, 1]);
                }
                velocity[i, 0] = momentum * velocity[i, 0] - learningRate * 4 * gx;
                velocity[i, 1] = momentum * velocity[i, 1] - learningRate * 4 * gy;
            }
            for (int i = 0; i < n; i++) { y[i, 0] += velocity[i, 0]; y[i, 1] += velocity[i, 1]; }
        }
        return Enumerable.Range(0, n).Select(i => (y[i, 0], y[i, 1])).ToArray();
    }

    /// <summary>Symmetric pᵢⱼ = (pⱼ|ᵢ + pᵢ|ⱼ) / 2n, each row's bandwidth bisected so that 2^H(Pᵢ) = perplexity.</summary>
    static double[,] Affinities(double[][] points, double perplexity)
    {
        int n = points.Length;
        var distance = new double[n, n];
        for (int i = 0; i < n; i++)
            for (int j = i + 1; j < n; j++)
            {
                double s = 0;
                for (int d = 0; d < points[i].Length; d++) { double diff = points[i][d] - points[j][d]; s += diff * diff; }
                distance[i, j] = distance[j, i] = s;
            }
        var conditional = new double[n, n];
        double targetEntropy = Math.Log(perplexity);
        for (int i = 0; i < n; i++)
        {
            double lo = 0, hi = double.PositiveInfinity, beta = 1;
            for (int attempt = 0; attempt < 64; attempt++)
            {
                double sum = 0, weighted = 0;
                for (int j = 0; j < n; j++)
                {
                    if (j == i) continue;
                    double w = Math.Exp(-beta * distance[i, j]);
                    conditional[i, j] = w;
                    sum += w;
                    weighted += w * distance[i, j];
                }
                sum = Math.Max(sum, 1e-300);
                double entropy = Math.Log(sum) + beta * weighted / sum;
                for (int j = 0; j < n; j++) conditional[i, j] /= sum;
                if (Math.Abs(entropy - targetEntropy) < 1e-5) break;
                if (entropy > targetEntropy) { lo = beta; beta = double.IsPositiveInfinity(hi) ? beta * 2 : (beta + hi) / 2; }
                else { hi = beta; beta = (beta + lo) / 2; }
            }
        }
        var p = new double[n, n];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
                p[i, j] = Math.Max((conditional[i, j] + conditional[j, i]) / (2 * n), 1e-12);
        return p;
    }

    static double Gaussian(Random rng) => Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());
}
