using System.CommandLine;
using Unlearnable.Cli.Commands;

Unlearnable.Clip.Runtime.TorchRuntime.PrepareNativeEnvironment();   // before any torch call
// Written to a file or a pipe, Spectre would wrap log lines at 80 columns, in the middle of a number.
if (Console.IsOutputRedirected) Spectre.Console.AnsiConsole.Profile.Width = 240;

var root = new RootCommand("Unlearnable: protect image–caption data from CLIP-style training, and measure what holds.")
{
    TokenizeCommand.Create(),
    DatasetCommand.Create(),
    TrainCommand.Create(),
    EvaluateCommand.Create(),
    DemoCommand.Create(),
    BenchCommand.Create(),
    ProtectCommand.Create(),
    ExperimentCommand.Create(),
    EvaluateAttackCommand.Create(),
};
var parsed = root.Parse(args);
if (parsed.Errors.Count > 0)   // a value the option's type or validator refuses is bad input, like any other (exit 2)
{
    foreach (var error in parsed.Errors) await Console.Error.WriteLineAsync("error: " + error.Message);
    return CommandErrors.BadInput;
}
return await parsed.InvokeAsync();
