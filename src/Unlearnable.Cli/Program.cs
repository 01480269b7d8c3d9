using System.CommandLine;
using Unlearnable.Cli.Commands;

Unlearnable.Clip.Runtime.TorchRuntime.PrepareNativeEnvironment();   // before any torch call

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
return await root.Parse(args).InvokeAsync();
