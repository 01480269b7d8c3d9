using Spectre.Console;
using Unlearnable.Clip.Model;
using Unlearnable.Data;
using Unlearnable.Training;
using static TorchSharp.torch;

namespace Unlearnable.Cli.Commands;

/// <summary>Runs a <see cref="ClipTrainer"/> behind a progress bar showing epoch, loss, learning rate and ETA.</summary>
static class TrainingProgress
{
    public static TrainingState Run(ClipModel model, TrainingOptions options, Device device, IReadOnlyList<CaptionedImage> train,
        ImageTensors pixels, string? checkpoint, CancellationToken cancel, Action<EpochResult>? onEpoch = null)
    {
        TrainingState? state = null;
        AnsiConsole.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
            .Start(context =>
            {
                int steps = ClipTrainer.BatchSizes(train.Count, options.BatchSize).Count * options.Epochs;
                var task = context.AddTask("training", maxValue: steps);
                var trainer = new ClipTrainer(model, options, device)
                {
                    OnStep = p =>
                    {
                        task.Value = (p.Epoch - 1) * p.StepsPerEpoch + p.Step;
                        task.Description = $"epoch {p.Epoch}/{p.Epochs} loss {p.Loss:F3} lr {p.LearningRate:E1}";
                    },
                    OnEpoch = e =>
                    {
                        AnsiConsole.MarkupLine($"epoch {e.Epoch}: mean loss {e.MeanLoss:F4} ({e.Elapsed.TotalSeconds:F1} s)");
                        onEpoch?.Invoke(e);
                    },
                };
                state = trainer.Train(train, pixels, checkpoint, cancel);
                task.Value = steps;
            });
        return state!;
    }
}
