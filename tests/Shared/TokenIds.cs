using Unlearnable.Clip.Model;
using Unlearnable.Clip.Text;
using static TorchSharp.torch;

namespace Unlearnable.Tests;

/// <summary>Captions as the text tower reads them: CLIP token ids, one row of the model's context length per caption.</summary>
static class TokenIds
{
    public static Tensor Of(ClipModel model, params string[] texts) =>
        tensor(ClipTokenizer.Default.EncodeBatch(texts, model.Config.Text.ContextLength).Select(i => (long)i).ToArray(),
            [texts.Length, model.Config.Text.ContextLength]);
}
