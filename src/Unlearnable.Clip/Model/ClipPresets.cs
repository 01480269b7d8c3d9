using Unlearnable.Clip.Text;

namespace Unlearnable.Clip.Model;

/// <summary>
/// Named model sizes. tiny/small run on a 2-core CPU (CI and development); rn50, rn101 and vitb32
/// are the paper's 224-pixel configurations of OpenAI's released models, meant for a GPU, and use
/// QuickGELU as those weights need.
/// </summary>
public static class ClipPresets
{
    const int Vocab = ClipTokenizer.VocabularySize;

    static readonly Dictionary<string, ClipConfig> All = new(StringComparer.OrdinalIgnoreCase)
    {
        ["tiny"] = new("tiny", 64, new(VisionKind.ResNet, 64, [1, 1, 1, 1], 16), new(32, Vocab, 128, 4, 2)),
        ["tiny-vit"] = new("tiny-vit", 64, new(VisionKind.ViT, 64, [3], 128, PatchSize: 8, Heads: 4), new(32, Vocab, 128, 4, 2)),
        ["small"] = new("small", 256, new(VisionKind.ResNet, 64, [2, 2, 2, 2], 32), new(77, Vocab, 256, 4, 4)),
        ["small-vit"] = new("small-vit", 256, new(VisionKind.ViT, 64, [6], 256, PatchSize: 8, Heads: 4), new(77, Vocab, 256, 4, 4)),
        ["rn50"] = new("rn50", 1024, new(VisionKind.ResNet, 224, [3, 4, 6, 3], 64), new(77, Vocab, 512, 8, 12), QuickGelu: true),
        ["rn101"] = new("rn101", 512, new(VisionKind.ResNet, 224, [3, 4, 23, 3], 64), new(77, Vocab, 512, 8, 12), QuickGelu: true),
        ["vitb32"] = new("vitb32", 512, new(VisionKind.ViT, 224, [12], 768, PatchSize: 32, Heads: 12), new(77, Vocab, 512, 8, 12), QuickGelu: true),
    };

    public static IReadOnlyCollection<string> Names => All.Keys;

    /// <param name="quickGelu">Overrides the preset's activation when given.</param>
    public static ClipConfig Get(string name, bool? quickGelu = null) =>
        All.TryGetValue(name, out var config)
            ? quickGelu is bool q ? config with { QuickGelu = q } : config
            : throw new ArgumentException($"Unknown preset '{name}'. Known presets: {string.Join(", ", All.Keys)}.", nameof(name));

    /// <summary>The preset with exactly this architecture, if any (names what a config-less file turned out to be).</summary>
    public static string? NameOf(ClipConfig config) =>
        All.Values.FirstOrDefault(p => p.SameArchitecture(config with { QuickGelu = p.QuickGelu }))?.Name;
}
