namespace Unlearnable.Clip.Model;

/// <summary>
/// Floating-point operations of one forward pass (a multiply-add counts two), from the architecture alone, counted
/// as open_clip's model profile counts them: convolutions, projections and the two attention products, full (not
/// causal) attention; normalisations, activations and pooling are left out (a few per cent). Benchmarks divide these
/// by time to show how close a step runs to the CPU's peak.
/// </summary>
public static class ClipFlops
{
    /// <summary>One image through the image tower, projection included.</summary>
    public static double Image(ClipConfig config) => config.Vision.Kind == VisionKind.ViT
        ? VisionTransformer(config.Vision, config.EmbedDim)
        : ResNet(config.Vision, config.EmbedDim);

    /// <summary>One caption row of <paramref name="tokens"/> tokens through the text tower, projection included.</summary>
    public static double Text(ClipConfig config, int tokens) =>
        Blocks(tokens, config.Text.Width, config.Text.Layers) + 2.0 * config.Text.Width * config.EmbedDim;

    // Per pre-LN block: q, k, v and out projections (4·w² per token), the MLP (8·w² per token), then Q·Kᵀ and A·V (2·n²·w).
    static double Blocks(int tokens, int width, int layers) =>
        layers * (2.0 * 12 * tokens * width * width + 2.0 * 2 * tokens * tokens * width);

    static double VisionTransformer(VisionConfig vision, int embed)
    {
        int patches = (vision.ImageSize / vision.PatchSize) * (vision.ImageSize / vision.PatchSize);
        double patchEmbedding = 2.0 * patches * 3 * vision.PatchSize * vision.PatchSize * vision.Width;
        return patchEmbedding + Blocks(patches + 1, vision.Width, vision.Layers[0]) + 2.0 * vision.Width * embed;
    }

    static double ResNet(VisionConfig vision, int embed)
    {
        int w = vision.Width, side = vision.ImageSize / 2;
        double flops = Conv(3, w / 2, 3, side) + Conv(w / 2, w / 2, 3, side) + Conv(w / 2, w, 3, side);
        side /= 2;   // the stem's average pool
        int inplanes = w;
        for (int stage = 0; stage < 4; stage++)
        {
            int planes = w << stage, width = planes * Bottleneck.Expansion;
            for (int block = 0; block < vision.Layers[stage]; block++)
            {
                int stride = block == 0 && stage > 0 ? 2 : 1, output = side / stride;
                flops += Conv(inplanes, planes, 1, side) + Conv(planes, planes, 3, side) + Conv(planes, width, 1, output);
                if (stride > 1 || inplanes != width) flops += Conv(inplanes, width, 1, output);   // the shortcut's 1×1
                (inplanes, side) = (width, output);
            }
        }
        // Attention pooling: keys and values for every position and the mean, one query (the mean), the output projection.
        double tokens = side * side + 1, c = inplanes;
        return flops + 2.0 * 2 * tokens * c * c + 2.0 * c * c + 2.0 * 2 * tokens * c + 2.0 * c * embed;
    }

    static double Conv(int input, int output, int kernel, int side) => 2.0 * input * output * kernel * kernel * side * side;
}
