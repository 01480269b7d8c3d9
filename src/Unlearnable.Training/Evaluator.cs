using Unlearnable.Clip.Text;
using TorchSharp;
using Unlearnable.Clip.Model;
using Unlearnable.Data;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Unlearnable.Training;

/// <summary>Encodes a clean test split with a model and scores image↔text retrieval.</summary>
public static class Evaluator
{
    public static RetrievalReport Evaluate(ClipModel model, IReadOnlyList<CaptionedImage> items, ImageTensors pixels, Device device, int batchSize = 128)
    {
        if (items.Count == 0) throw new ArgumentException("the evaluation split has no images");
        var (imageFeatures, textFeatures, owner) = Features(model, items, pixels, device, batchSize);
        using var scope = NewDisposeScope();
        var similarity = functional.normalize(imageFeatures, dim: -1).matmul(functional.normalize(textFeatures, dim: -1).T).cpu();
        var matrix = new float[items.Count, owner.Length];
        var flat = similarity.data<float>().ToArray();
        Buffer.BlockCopy(flat, 0, matrix, 0, flat.Length * sizeof(float));
        imageFeatures.Dispose();
        textFeatures.Dispose();
        return RetrievalMetrics.Compute(matrix, owner);
    }

    /// <summary>Image features [images, d], caption features [captions, d] and each caption's image index.</summary>
    public static (Tensor Images, Tensor Texts, int[] Owner) Features(ClipModel model, IReadOnlyList<CaptionedImage> items, ImageTensors pixels, Device device, int batchSize = 128)
    {
        bool wasTraining = model.training;
        model.eval();
        try
        {
            using var _ = no_grad();
            var imageChunks = new List<Tensor>();
            for (int start = 0; start < items.Count; start += batchSize)
            {
                using var scope = NewDisposeScope();
                var batch = items.Skip(start).Take(batchSize).Select(i => i.Image).ToList();
                imageChunks.Add(model.EncodeImage(pixels.Batch(batch, device)).MoveToOuterDisposeScope());
            }
            var captions = items.SelectMany(i => i.Captions).ToList();
            var owner = items.SelectMany((item, index) => item.Captions.Select(_ => index)).ToArray();
            var textChunks = new List<Tensor>();
            for (int start = 0; start < captions.Count; start += batchSize)
            {
                using var scope = NewDisposeScope();
                var ids = TextTensors.Batch(captions.Skip(start).Take(batchSize).ToList(), model.Config.Text.ContextLength, device);
                textChunks.Add(model.EncodeText(ids).MoveToOuterDisposeScope());
            }
            var images = cat(imageChunks, 0);
            var texts = cat(textChunks, 0);
            foreach (var t in imageChunks.Concat(textChunks)) t.Dispose();
            return (images, texts, owner);
        }
        finally
        {
            model.train(wasTraining);
        }
    }
}
