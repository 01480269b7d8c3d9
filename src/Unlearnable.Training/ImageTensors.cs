using Unlearnable.Data;
using Unlearnable.Imaging;
using static TorchSharp.torch;

namespace Unlearnable.Training;

/// <summary>
/// Turns data-set images into CLIP-preprocessed CHW floats at the model's resolution, decoding
/// each image once (in parallel) and keeping the result while it fits a memory budget.
/// </summary>
public sealed class ImageTensors(int imageSize, ImageLimits? limits = null, long cacheBudgetBytes = 4L << 30)
{
    readonly Dictionary<ImageSource, float[]> _cache = new(ReferenceEqualityComparer.Instance);
    readonly object _gate = new();
    long _cachedBytes;

    public int ImageSize => imageSize;

    public float[] Pixels(ImageSource source)
    {
        lock (_gate)
            if (_cache.TryGetValue(source, out var hit)) return hit;
        float[] chw;
        using (var bitmap = SafeImageDecoder.Decode(source.ReadBytes(), limits, source.Name))
            chw = ClipPreprocess.ToChw(bitmap, imageSize);
        lock (_gate)
        {
            if (_cachedBytes + chw.Length * 4L <= cacheBudgetBytes && _cache.TryAdd(source, chw)) _cachedBytes += chw.Length * 4L;
        }
        return chw;
    }

    /// <summary>A [n, 3, size, size] batch on <paramref name="device"/>.</summary>
    public Tensor Batch(IReadOnlyList<ImageSource> sources, Device device)
    {
        int plane = 3 * imageSize * imageSize;
        var data = new float[sources.Count * plane];
        Parallel.For(0, sources.Count, i => Pixels(sources[i]).CopyTo(data, i * plane));
        return tensor(data, [sources.Count, 3, imageSize, imageSize]).to(device);
    }
}
