using System.Text.RegularExpressions;
using static TorchSharp.torch;

namespace Unlearnable.Clip.Checkpoints;

/// <summary>
/// Renames keys of checkpoints written by earlier versions to today's (OpenAI's) names, so old
/// work folders and cached surrogates keep loading. Before, the ResNet shortcut was
/// "downsample.0" (pool), ".1" (conv), ".2" (BN); OpenAI's are "-1", "0", "1".
/// </summary>
public static partial class LegacyKeys
{
    [GeneratedRegex(@"^(visual\.layer\d+\.\d+\.downsample\.)([12])\.")]
    private static partial Regex OldShortcut();

    /// <summary>The same tensors under today's names; the map itself when nothing is old.</summary>
    public static IReadOnlyDictionary<string, Tensor> Migrate(IReadOnlyDictionary<string, Tensor> tensors)
    {
        // Only the old layout has a ".downsample.2." (today's shortcut ends at ".1.").
        if (!tensors.Keys.Any(k => k.Contains(".downsample.2.", StringComparison.Ordinal))) return tensors;
        return tensors.ToDictionary(
            kv => OldShortcut().Replace(kv.Key, m => m.Groups[1].Value + (m.Groups[2].Value == "1" ? "0" : "1") + "."),
            kv => kv.Value);
    }
}
