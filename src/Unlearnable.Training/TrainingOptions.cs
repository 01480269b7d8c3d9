namespace Unlearnable.Training;

/// <summary>The paper's from-scratch recipe by default: AdamW lr 5e-4, wd 0.2, warmup then cosine.</summary>
public sealed record TrainingOptions
{
    public int Epochs { get; init; } = 32;
    public int BatchSize { get; init; } = 128;
    public double LearningRate { get; init; } = 5e-4;
    public double WeightDecay { get; init; } = 0.2;
    public int WarmupSteps { get; init; } = 50;
    public double Beta1 { get; init; } = 0.9;
    public double Beta2 { get; init; } = 0.98;
    public double Epsilon { get; init; } = 1e-6;
    public int Seed { get; init; }

    public void Validate()
    {
        if (Epochs < 1) throw new ArgumentOutOfRangeException(nameof(Epochs), Epochs, "epochs must be at least 1");
        if (BatchSize < 2) throw new ArgumentOutOfRangeException(nameof(BatchSize), BatchSize, "a contrastive batch needs at least 2 pairs");
        if (LearningRate is <= 0 or > 1) throw new ArgumentOutOfRangeException(nameof(LearningRate), LearningRate, "learning rate must be in (0, 1]");
        if (WeightDecay < 0) throw new ArgumentOutOfRangeException(nameof(WeightDecay), WeightDecay, "weight decay must be ≥ 0");
        if (WarmupSteps < 0) throw new ArgumentOutOfRangeException(nameof(WarmupSteps), WarmupSteps, "warmup steps must be ≥ 0");
    }
}

/// <summary>Linear warmup to the peak rate, then cosine decay to zero at the last step.</summary>
public static class LearningRateSchedule
{
    public static double At(long step, long totalSteps, int warmupSteps, double peak)
    {
        if (step < warmupSteps) return peak * (step + 1) / warmupSteps;
        long decaySteps = Math.Max(1, totalSteps - warmupSteps);
        double progress = Math.Min(1.0, (double)(step - warmupSteps) / decaySteps);
        return 0.5 * (1 + Math.Cos(Math.PI * progress)) * peak;
    }
}

public sealed record StepProgress(int Epoch, int Epochs, int Step, int StepsPerEpoch, double Loss, double LearningRate, double LogitScale);

public sealed record EpochResult(int Epoch, double MeanLoss, TimeSpan Elapsed);
