namespace Unlearnable.Clip.Model;

public enum VisionKind { ResNet, ViT }

/// <summary>Image tower: CLIP's ModifiedResNet (Layers, Width) or a ViT (Layers[0] blocks, Width, PatchSize).</summary>
public sealed record VisionConfig(VisionKind Kind, int ImageSize, int[] Layers, int Width, int PatchSize = 0, int Heads = 0)
{
    /// <summary>Channels after the last ResNet stage (= the attention-pool width), or the ViT width.</summary>
    public int FeatureWidth => Kind == VisionKind.ResNet ? Width * 32 : Width;
    public int ResNetHeads => Width * 32 / 64;

    public bool SameShape(VisionConfig other) =>
        (Kind, ImageSize, Width, PatchSize, Heads) == (other.Kind, other.ImageSize, other.Width, other.PatchSize, other.Heads)
        && Layers.SequenceEqual(other.Layers);
}

public sealed record TextConfig(int ContextLength, int VocabSize, int Width, int Heads, int Layers);

/// <summary>
/// A CLIP: two towers projected to an EmbedDim joint space. QuickGelu (x·σ(1.702x)) is the
/// activation OpenAI's released weights were trained with; open_clip's own models use exact GELU.
/// </summary>
public sealed record ClipConfig(string Name, int EmbedDim, VisionConfig Vision, TextConfig Text, bool QuickGelu = false)
{
    /// <summary>Same tensors and activation, whatever the name.</summary>
    public bool SameArchitecture(ClipConfig other) =>
        EmbedDim == other.EmbedDim && Text == other.Text && QuickGelu == other.QuickGelu && Vision.SameShape(other.Vision);

    public override string ToString() =>
        $"{Name}: {Vision.Kind} {Vision.ImageSize}px layers [{string.Join(",", Vision.Layers)}] width {Vision.Width}, " +
        $"text ctx {Text.ContextLength} width {Text.Width} x{Text.Layers}, embed {EmbedDim}{(QuickGelu ? ", QuickGELU" : "")}";
}
