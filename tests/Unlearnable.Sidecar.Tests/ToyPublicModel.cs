namespace Unlearnable.Sidecar.Tests;

/// <summary>
/// The default ensemble at toy size, for every sidecar the tests start: 64 scenes, one epoch, each member hardened for
/// 2 steps (minutes less than the shipped recipe, same code). The prepared-model tests name its files from these;
/// .ci/run's image builds set the same three settings.
/// </summary>
static class ToyPublicModel
{
    public const int Images = 64, Epochs = 1, HardeningSteps = 2;

    /// <summary>As configuration keys (Sidecar:Model:…).</summary>
    public static IReadOnlyDictionary<string, string> Settings { get; } = new Dictionary<string, string>
    {
        ["Sidecar:Model:DefaultTrainingImages"] = $"{Images}",
        ["Sidecar:Model:DefaultTrainingEpochs"] = $"{Epochs}",
        ["Sidecar:Model:Hardening:Steps"] = $"{HardeningSteps}",
    };

    /// <summary>As environment variables (Sidecar__Model__…), for a sidecar in its own process.</summary>
    public static Dictionary<string, string> Environment() => Settings.ToDictionary(s => s.Key.Replace(":", "__"), s => s.Value);

    /// <summary>The file a public model of <paramref name="preset"/> at <paramref name="seed"/> is cached as, or its hardened copy (at the default ε 2/255).</summary>
    public static string FileName(string preset, int seed, bool hardened = false) =>
        $"public-v{Protection.PublicModel.RecipeVersion}-{preset}-{Images}x{Epochs}-seed{seed}{(hardened ? $"-hardened-v1-2x{HardeningSteps}-s{seed}" : "")}.safetensors";
}
