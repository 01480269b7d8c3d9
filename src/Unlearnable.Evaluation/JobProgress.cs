namespace Unlearnable.Evaluation;

/// <summary>
/// One progress event of a job: the phase (data, pretrain, protect, train, evaluate, report),
/// a line for people, the count done of a total within the phase, and, while an arm trains, its name, epoch and loss.
/// </summary>
public sealed record JobProgress(string Phase, string Message, int Done, int Total, string? Arm = null, int ArmIndex = 0, int Arms = 0,
    int Epoch = 0, int Epochs = 0, double? Loss = null)
{
    public static JobProgress Stage(string phase, string message, int done = 0, int total = 0) => new(phase, message, done, total);
}
