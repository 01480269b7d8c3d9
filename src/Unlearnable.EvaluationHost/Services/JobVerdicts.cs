using System.Text.Json;
using Unlearnable.Contracts.V1;
using Unlearnable.Evaluation;

namespace Unlearnable.EvaluationHost.Services;

/// <summary>A finished job's verdict (report.json's "verdict") in the contract's terms.</summary>
public static class JobVerdicts
{
    public static async Task<JobVerdict?> Read(string jobFolder, CancellationToken cancel)
    {
        var path = Path.Combine(jobFolder, "report.json");
        if (!File.Exists(path)) return null;
        await using var file = File.OpenRead(path);
        using var report = await JsonDocument.ParseAsync(file, cancellationToken: cancel);
        if (!report.RootElement.TryGetProperty("verdict", out var node) || node.ValueKind != JsonValueKind.Object) return null;
        return From(node.Deserialize<ProtectionVerdict>(AttackSpec.Json)!);
    }

    public static JobVerdict From(ProtectionVerdict verdict)
    {
        var message = new JobVerdict
        {
            Arms = { verdict.Arms.Select(a => Kept(a)) },
            WorstImageToTextArm = verdict.WorstImageToText.Arm ?? "",
            WorstTextToImageArm = verdict.WorstTextToImage.Arm ?? "",
        };
        if (verdict.WorstImageToText.Kept is { } i2t) message.WorstImageToText = i2t;
        if (verdict.WorstTextToImage.Kept is { } t2i) message.WorstTextToImage = t2i;
        if (verdict.CleanGainImageToText is { } gainI2T) message.CleanGainImageToText = gainI2T;
        if (verdict.CleanGainTextToImage is { } gainT2I) message.CleanGainTextToImage = gainT2I;
        return message;
    }

    static Contracts.V1.ArmKept Kept(Evaluation.ArmKept arm)
    {
        var kept = new Contracts.V1.ArmKept { Arm = arm.Arm, Defence = arm.Defence ?? "" };
        if (arm.ImageToText is { } i2t) kept.ImageToText = i2t;
        if (arm.TextToImage is { } t2i) kept.TextToImage = t2i;
        return kept;
    }
}
