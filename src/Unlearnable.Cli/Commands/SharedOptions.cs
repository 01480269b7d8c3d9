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

    /// <summary>
    /// An enum option that takes its values in lower case (any case accepted) and refuses anything else at parse
    /// time with the list, e.g. "--method must be em, uap or mem, not 'magic'".
    /// </summary>
    public static Option<T?> OneOf<T>(this Option<T?> option) where T : struct, Enum
    {
        var names = Enum.GetNames<T>().Select(n => n.ToLowerInvariant()).ToList();
        option.CustomParser = result =>
        {
            var token = result.Tokens.Count == 1 ? result.Tokens[0].Value : "";
            if (Enum.TryParse<T>(token, ignoreCase: true, out var value) && Enum.IsDefined(value) && !token.All(char.IsAsciiDigit)) return value;
            result.AddError($"{option.Name} must be {string.Join(", ", names[..^1])} or {names[^1]}, not '{token}'");
            return null;
        };
        option.CompletionSources.Add(names.ToArray());
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

    public static Option<string> Device() => new Option<string>("--device")
    {
        Description = "cpu, cuda, cuda:N or auto (CUDA when TorchSharp sees one)",
        DefaultValueFactory = _ => "auto",
    }.Must(d => System.Text.RegularExpressions.Regex.IsMatch(d.Trim(), "^(cpu|cuda|cuda:[0-9]+|auto)$", System.Text.RegularExpressions.RegexOptions.IgnoreCase),
        "--device must be cpu, cuda, cuda:N or auto");

    /// <summary>The surrogates' matrix products while protecting; bfloat16 lifts oneDNN's AVX2 cap before torch starts.</summary>
    public static Option<Clip.Model.MatmulPrecision?> Precision() => new Option<Clip.Model.MatmulPrecision?>("--precision")
    {
        Description = "The surrogate's matrix products while protecting: float32 (default: the authors' arithmetic) or bfloat16 " +
            "(2-3× faster at real sizes on CPUs with AVX-512 BF16; the noise differs in rounding)",
    }.OneOf();

    /// <summary>Readies the kernels a precision needs (before the command's first torch call); warns where bfloat16 will run slow.</summary>
    public static void PrepareKernels(Clip.Model.MatmulPrecision precision)
    {
        if (precision == Clip.Model.MatmulPrecision.Bfloat16 && Clip.Runtime.TorchRuntime.EnableBFloat16Kernels() is { } missing)
            Console.Error.WriteLine($"warning: bfloat16 products will be slower than float32: {missing}");
    }

    public static Option<int> Seed() => new("--seed") { Description = "Random seed", DefaultValueFactory = _ => 0 };

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
