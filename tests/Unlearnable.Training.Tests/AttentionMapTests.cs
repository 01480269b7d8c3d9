using Unlearnable.Clip.Model;
using Unlearnable.Clip.Runtime;
using Unlearnable.Data.Synthetic;
using static TorchSharp.torch;

namespace Unlearnable.Training.Tests;

/// <summary>Grad-CAM maps of the image tower (the report's attention figure).</summary>
public class AttentionMapTests
{
    [Theory]
    [InlineData("tiny")]
    [InlineData("tiny-vit")]
    public void EachPhotoGetsItsOwnMapScaledToOne(string preset)
    {
        TorchRuntime.Seed(4);
        using var model = new ClipModel(ClipPresets.Get(preset));
        // A few epochs on scenes, so that the model's features say something about its captions (at random initialisation they barely do).
        var training = SyntheticScenes.Generate(24, seed: 8, testImages: 0, size: 64).Items;
        new ClipTrainer(model, new TrainingOptions { Epochs = 15, BatchSize = 8, WarmupSteps = 1, LearningRate = 1e-3 }, CPU).Train(training, new ImageTensors(64));
        var scenes = training.Take(3).ToList();
        using var batch = new ImageTensors(64).Batch(scenes.Select(s => s.Image).ToList(), CPU);
        var captions = scenes.Select(s => s.Captions[0]).ToList();
        var maps = AttentionMaps.GradCam(model, batch, captions, CPU);
        Assert.Equal(3, maps.Length);
        foreach (var map in maps)
        {
            Assert.Equal(64 * 64, map.Length);
            Assert.All(map, v => Assert.InRange(v, 0f, 1f + 1e-6f));
            Assert.True(map.Max() == 0 || Math.Abs(map.Max() - 1) < 1e-5, "a map is scaled so its peak is 1");
        }
        Assert.Contains(maps, m => m.Max() - m.Min() > 0.1);
        // A photo's map does not depend on the others in its batch (the model is scored in eval mode, photo by photo).
        var alone = AttentionMaps.GradCam(model, batch[1..2], [captions[1]], CPU)[0];
        for (int i = 0; i < alone.Length; i++) Assert.True(Math.Abs(maps[1][i] - alone[i]) < 1e-4, $"pixel {i}: {maps[1][i]} in the batch, {alone[i]} alone");
        // The tower split for the maps is the tower: pooling its features gives the image features.
        using var scope = NewDisposeScope();
        var (features, pooled) = model.EncodeImageWithFeatures(batch);
        Assert.True(pooled.allclose(model.EncodeImage(batch), rtol: 1e-5, atol: 1e-5));
        Assert.Equal(4, model.FeatureMap(features).dim());
    }
}
