using System.CommandLine;
using Spectre.Console;
using Unlearnable.Clip.Runtime;
using Unlearnable.Evaluation;

namespace Unlearnable.Cli.Commands;

/// <summary>`unlearnable evaluate-attack --spec job.json --out DIR`: the evaluation host's job, without a server.</summary>
static class EvaluateAttackCommand
{
    public static Command Create()
    {
        var spec = new Option<string>("--spec") { Description = "Attack spec (JSON): data, protection, attack and arms; see examples/attacks/", Required = true };
        var output = new Option<string>("--out") { Description = "Folder for report.json, report.md, plots and the job's work files (rerun to resume)", Required = true };
        var device = SharedOptions.Device();
        var command = new Command("evaluate-attack", "Attack protected data like a hacker would (train from scratch or fine-tune) and report what the protection held")
            { spec, output, device, Summarize() };
        command.SetAction((result, cancel) => CommandErrors.Run(() =>
        {
            RunWithProgress(AttackSpec.Load(result.GetValue(spec)!), result.GetValue(device)!, result.GetValue(output)!, cancel);
            return Task.FromResult(0);
        }));
        return command;
    }

    /// <summary>`unlearnable evaluate-attack summarize RUN RUN… --out DIR`: what repeats of one job kept, mean and range per arm.</summary>
    static Command Summarize()
    {
        var runs = new Argument<string[]>("runs") { Description = "Output folders of finished repeats of one job (the same spec, another seed or protection.seed)", Arity = ArgumentArity.OneOrMore };
        runs.Validators.Add(r => { if (r.Tokens.Count < 2) r.AddError($"summarize reads two or more run folders (repeats of one job); {r.Tokens.Count} given"); });
        var output = new Option<string>("--out") { Description = "Folder for summary.json, summary.md and kept-spread.png", Required = true };
        var command = new Command("summarize", "Read repeats of one attack job together: protection kept per arm, mean and range over the runs, as a table and a chart")
            { runs, output };
        command.SetAction((result, cancel) => CommandErrors.Run(() =>
        {
            var folders = result.GetValue(runs)!;
            var summary = RepeatSummary.Of(folders.Select(f => (f, RepeatSummary.ReadReport(f))).ToList());
            RepeatSummaryWriter.Write(result.GetValue(output)!, summary);
            var table = new Table().AddColumns("", "face→name / name→face kept, mean (range)", "runs");
            foreach (var row in summary.Rows)
                table.AddRow(Markup.Escape(row.Row), RepeatSummaryWriter.Cell(row), $"{row.Runs}");
            AnsiConsole.Write(table);
            Console.WriteLine($"summary of {folders.Length} runs in {result.GetValue(output)}");
            return Task.FromResult(0);
        }));
        return command;
    }

    /// <summary>Validates, runs the job behind progress bars (arms, and the current phase with its ETA), and prints the final table.</summary>
    public static AttackReport RunWithProgress(AttackSpec attack, string device, string outDir, CancellationToken cancel)
    {
        SpecValidator.EnsureValid(attack);
        SharedOptions.PrepareKernels(attack.Protection.Precision ?? Clip.Model.MatmulPrecision.Float32);
        var dev = Devices.Resolve(device);
        AttackReport? report = null;
        AnsiConsole.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
            .Start(context =>
            {
                var arms = context.AddTask("arms", maxValue: Math.Max(1, ArmPlan.For(attack).Count));
                var phase = context.AddTask("preparing", maxValue: 1);
                report = new AttackJob(attack, dev, outDir)
                {
                    OnProgress = p =>
                    {
                        if (p.Total > 0)
                        {
                            phase.MaxValue = p.Total;
                            phase.Value = p.Done;
                        }
                        phase.Description = Markup.Escape(p.Arm is null ? p.Phase : $"{p.Arm} epoch {p.Epoch}/{p.Epochs}");
                        if (p.Arms > 0) arms.Value = p.ArmIndex;
                        if (p.Phase is not ("train" or "pretrain") || p.Total == 0)
                            AnsiConsole.MarkupLine($"[grey]{DateTime.Now:HH:mm:ss}[/] {Markup.Escape(p.Message)}");
                    },
                }.Run(cancel);
                arms.Value = arms.MaxValue;
            });
        var table = new Table().AddColumns("model", "image→text Hit@10", "MedR", "text→image Hit@10", "MedR");
        table.AddRow("random ranking", $"{report!.RandomI2T.Hit10:F1}", $"{report.RandomI2T.MedR:F1}", $"{report.RandomT2I.Hit10:F1}", $"{report.RandomT2I.MedR:F1}");
        foreach (var a in report.Arms) table.AddRow(Markup.Escape(a.Name), $"{a.I2T.Hit10:F1}", $"{a.I2T.MedR:F1}", $"{a.T2I.Hit10:F1}", $"{a.T2I.MedR:F1}");
        AnsiConsole.Write(table);
        Console.WriteLine($"finished in {report.Seconds / 60:F1} min; report in {outDir}");
        return report;
    }
}
