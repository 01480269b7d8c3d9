using Unlearnable.Protection.Robustness;

namespace Unlearnable.Protection;

/// <summary>How hard to protect, as users of Fawkes and Glaze ask for it: less visible and faster, or stronger.</summary>
public enum ProtectionStrength { Low, Medium, High }

/// <summary>
/// What a strength stands for: the noise bound (1/255 units), trigger-and-PGD rounds and PGD steps
/// per batch of posts, and what the noise is optimised to survive. Low is the authors' loop at half
/// the bound; medium and high are made robust to the re-encoding and downscaling platforms do.
/// </summary>
public sealed record StrengthLevel(double Epsilon, int Rounds, int PgdSteps, TransformSet RobustTo)
{
    public static StrengthLevel Default(ProtectionStrength strength) => strength switch
    {
        ProtectionStrength.Low => new(4, 1, 8, TransformSet.None),
        ProtectionStrength.High => new(12, 3, 12, TransformSet.Platform),
        _ => new(8, 2, 8, TransformSet.Platform),
    };
}
