using System.CommandLine;

namespace Unlearnable.Cli.Commands;

/// <summary>Options several commands share, so they are spelled and documented once.</summary>
static class SharedOptions
{
    public static Option<string> Preset(bool required = true) => new("--preset")
    {
        Description = "Model size: tiny, tiny-vit, small, small-vit (CPU) or rn50, rn101, vitb32 (paper sizes, GPU)",
        Required = required,
        DefaultValueFactory = required ? null! : _ => "tiny",
    };

    public static Option<string> Device() => new("--device")
    {
        Description = "cpu, cuda, cuda:N or auto (CUDA when TorchSharp sees one)",
        DefaultValueFactory = _ => "auto",
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
}
