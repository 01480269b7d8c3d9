using Unlearnable.Clip.Text;
using Unlearnable.Clip.Model;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Unlearnable.Training;

/// <summary>
/// Grad-CAM for CLIP's image tower (the paper's Fig. 5): where in a photo the model looks when it matches the photo
/// to a caption. The score is the cosine between the image's and the caption's features; each channel of the tower's
/// last spatial features is weighted by the mean of the score's gradient over the map, the weighted channels are
/// summed, negative evidence is cut (ReLU), and the map is scaled to [0, 1] and resized to the input.
/// </summary>
public static class AttentionMaps
{
    /// <summary>One map per image, [n, size, size] in [0, 1] (all zero where nothing speaks for the caption).</summary>
    public static float[][] GradCam(ClipModel model, Tensor pixels, IReadOnlyList<string> captions, Device device)
    {
        if (pixels.shape[0] != captions.Count) throw new ArgumentException($"{pixels.shape[0]} images for {captions.Count} captions");
        bool wasTraining = model.training;
        model.eval();
        try
        {
            using var scope = NewDisposeScope();
            using var grad = enable_grad();
            var (features, images) = model.EncodeImageWithFeatures(pixels.to(device));
            var texts = model.EncodeText(TextTensors.Batch(captions, model.Config.Text.ContextLength, device));
            var score = functional.cosine_similarity(images, texts.detach(), dim: 1).sum();
            var gradient = autograd.grad([score], [features])[0];
            var map = model.FeatureMap(features.detach());
            var weights = model.FeatureMap(gradient).mean([2, 3], keepdim: true);             // [n, c, 1, 1]
            var cam = functional.relu((weights * map).sum(1, keepdim: true));                 // [n, 1, h, w]
            long size = pixels.shape[2];
            cam = functional.interpolate(cam, [size, size], mode: InterpolationMode.Bilinear, align_corners: false).squeeze(1);
            var peak = cam.flatten(1).max(1).values.clamp_min(1e-12).view(-1, 1, 1);
            var scaled = (cam / peak).cpu().data<float>().ToArray();
            int plane = (int)(size * size);
            return Enumerable.Range(0, captions.Count).Select(i => scaled[(i * plane)..((i + 1) * plane)]).ToArray();
        }
        finally
        {
            model.train(wasTraining);
        }
    }
}
