using Unlearnable.Clip.Model;

namespace Unlearnable.Clip.Checkpoints;

/// <summary>
/// The architecture of a config-less CLIP state dict (OpenAI's and open_clip's releases), read
/// from its tensor shapes the way their own loaders do. Shapes cannot tell the number of
/// attention heads or the activation: heads are width / 64, as in every released model, and the
/// activation is the caller's choice.
/// </summary>
public static class ArchitectureInference
{
    const int HeadWidth = 64;

    public static ClipConfig Infer(IReadOnlyDictionary<string, long[]> shapes, bool quickGelu, string source)
    {
        int Dim(string key, int dim) => shapes.TryGetValue(key, out var s) && s.Length > dim
            ? checked((int)s[dim])
            : throw Unknown(source, $"it has no tensor '{key}' of rank {dim + 1} or more");
        int Blocks(string prefix) => shapes.Keys.Where(k => k.StartsWith(prefix, StringComparison.Ordinal))
            .Select(k => k[prefix.Length..].Split('.')[0]).Distinct().Count();
        int Grid(string key)
        {
            int tokens = Dim(key, 0) - 1, grid = (int)Math.Round(Math.Sqrt(tokens));
            return grid * grid == tokens ? grid : throw Unknown(source, $"'{key}' has {tokens + 1} rows, not a square grid plus one");
        }
        int Heads(string what, int width) => width % HeadWidth == 0
            ? width / HeadWidth
            : throw Unknown(source, $"the {what} width {width} is not a multiple of {HeadWidth}, so its head count cannot be inferred");

        int textWidth = Dim("ln_final.weight", 0);
        var text = new TextConfig(Dim("positional_embedding", 0), Dim("token_embedding.weight", 0), textWidth,
            Heads("text", textWidth), Blocks("transformer.resblocks."));
        VisionConfig vision;
        if (shapes.ContainsKey("visual.proj"))
        {
            int width = Dim("visual.conv1.weight", 0), patch = Dim("visual.conv1.weight", 3);
            vision = new VisionConfig(VisionKind.ViT, patch * Grid("visual.positional_embedding"),
                [Blocks("visual.transformer.resblocks.")], width, patch, Heads("image", width));
        }
        else if (shapes.ContainsKey("visual.attnpool.positional_embedding"))
        {
            int[] layers = [.. Enumerable.Range(1, 4).Select(i => Blocks($"visual.layer{i}."))];
            if (layers.Contains(0)) throw Unknown(source, "its ResNet does not have four stages");
            vision = new VisionConfig(VisionKind.ResNet, 32 * Grid("visual.attnpool.positional_embedding"), layers, Dim("visual.layer1.0.conv1.weight", 0));
        }
        else throw Unknown(source, "it has neither a ViT ('visual.proj') nor a ResNet ('visual.attnpool.*') image tower");

        var config = new ClipConfig("inferred", Dim("text_projection", 1), vision, text, quickGelu);
        return config with { Name = ClipPresets.NameOf(config) ?? $"inferred-{vision.Kind.ToString().ToLowerInvariant()}" };
    }

    static InvalidDataException Unknown(string source, string why) =>
        new($"{source}: the CLIP architecture cannot be inferred ({why}); name a preset that matches it.");
}
