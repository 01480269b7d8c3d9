using TorchSharp;
using Unlearnable.Clip.Runtime;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Unlearnable.Clip.Model;

/// <summary>
/// The text side of CLIP. open_clip keeps these parameters at the top level of the model
/// (token_embedding, positional_embedding, transformer, ln_final, text_projection), so this is
/// a helper the ClipModel owns rather than a named sub-module.
/// </summary>
public static class TextFeatures
{
    /// <summary>Index of each row's EOT token: the largest id in the row (49407).</summary>
    public static Tensor EndOfTextIndex(Tensor ids) => ids.argmax(-1);

    /// <summary>Tokens the batch's features depend on: up to and including its last EOT.</summary>
    public static long UsedLength(Tensor eotIndex) => eotIndex.numel() == 0 ? 1 : eotIndex.max().item<long>() + 1;

    /// <summary>Reads the LN'd feature at each row's EOT position and projects it.</summary>
    public static Tensor Pool(Tensor hidden, Tensor eotIndex, Tensor projection)
    {
        var rows = KeptScalars.Range(hidden.shape[0], hidden.device);
        return hidden[rows, eotIndex].matmul(projection);
    }
}
