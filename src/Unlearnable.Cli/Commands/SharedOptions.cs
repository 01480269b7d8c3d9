using System.CommandLine;
using TorchSharp;
using Unlearnable.Clip.Checkpoints;
using Unlearnable.Clip.Model;

namespace Unlearnable.Cli.Commands;

/// <summary>Options several commands share, so they are spelled and documented once.</summary>
static class SharedOptions
{
    /// <summary>
    /// Adds a check of the option's value, refusing it with <paramref name="problem"/> at parse time.
    /// Skipped when the value did not parse at all (the parser has already said why), so "--people x"
    /// is a bad-input error rather than a crash.
    /// </summary>
    public static Option<T> Must<T>(this Option<T> option, Func<T, bool> ok, string problem)
    {
        option.Validators.Add(result =>
        {
            T value;
            try { value = result.GetValueOrDefault<T>()!; }
            catch (InvalidOperationException) { return; }
            if (!ok(value)) result.AddError(problem);
        });
        return option;
    }

    public static Option<string> Preset(bool required = true)
    {
        var option = new Option<string>("--preset")
        {
            Description = "Model size: tiny, tiny-vit, small, small-vit (CPU) or rn50, rn101, vitb32 (OpenAI's released sizes, GPU)",
            Required = required,
            DefaultValueFactory = required ? null! : _ => "tiny",
        };
        option.AcceptOnlyFromAmong([.. ClipPresets.Names]);
        return option;
    }

    public static Option<bool?> QuickGelu() => new("--quick-gelu")
    {
        Description = "Use QuickGELU (true) or exact GELU (false). Default: the preset's (true for rn50, rn101, vitb32), " +
            "the checkpoint's own, or true for a config-less checkpoint (OpenAI's weights need it; open_clip's LAION models want false)",
    };

    public static Option<string> Device() => new("--device")
    {
        Description = "cpu, cuda, cuda:N or auto (CUDA when TorchSharp sees one)",
        DefaultValueFactory = _ => "auto",
    };

    public static Option<bool> RestartSurrogate() => new("--restart-surrogate")
    {
        Description = "Start each round's surrogate from the same initial weights, a young surrogate (default: true; false trains one surrogate on, the authors' loop)",
        DefaultValueFactory = _ => new Protection.ProtectionOptions().RestartSurrogate,
    };

    public static Option<int> Seed() => new("--seed") { Description = "Random seed", DefaultValueFactory = _ => 0 };

    public static Option<string> TriggerScope() => new("--trigger-scope")
    {
        Description = "image: one trigger per image shared by its captions (default); caption: one per caption (the authors' per-pair triggers)",
        DefaultValueFactory = _ => "image",
    };

    public static bool PerImage(string scope) => scope switch
    {
        "image" => true,
        "caption" => false,
        _ => throw new ArgumentException($"--trigger-scope must be image or caption, not '{scope}'"),
    };

    /// <summary>--preset and --quick-gelu together: the architecture of a new model.</summary>
    public static ClipConfig Architecture(ParseResult result, Option<string> preset, Option<bool?> quickGelu) =>
        ClipPresets.Get(result.GetValue(preset)!, result.GetValue(quickGelu));

    /// <summary>
    /// A checkpoint, with --preset as the architecture of a config-less file only when the user
    /// gave it (its default must not override what the file says or what its shapes tell).
    /// </summary>
    public static ClipModel LoadCheckpoint(string path, ParseResult result, Option<string> preset, Option<bool?> quickGelu, torch.Device device) =>
        ClipCheckpoint.Load(path, device,
            result.GetResult(preset) is { Implicit: false } ? ClipPresets.Get(result.GetValue(preset)!) : null,
            result.GetValue(quickGelu));
}
