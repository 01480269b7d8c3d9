using static TorchSharp.torch;

namespace Unlearnable.Clip.Text;

/// <summary>Tokenised caption batches as int64 [n, context] tensors.</summary>
public static class TextTensors
{
    public static Tensor Batch(IReadOnlyList<string> captions, int contextLength, Device device) =>
        tensor(ClipTokenizer.Default.EncodeBatch(captions, contextLength).Select(i => (long)i).ToArray(),
            [captions.Count, contextLength]).to(device);
}
