namespace Unlearnable.Evaluation;

/// <summary>What the protection did to the training split, measured on the images the hacker receives.</summary>
public sealed record ProtectionSummary(string Source, int Images, int MaxLInfinity, double MeanPsnr, double? DictionaryShare,
    double Seconds, IReadOnlyList<string> ExampleTriggers, double MeanSsim = double.NaN, string? Posting = null);
