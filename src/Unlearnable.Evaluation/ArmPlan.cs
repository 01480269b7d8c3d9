using System.Globalization;

namespace Unlearnable.Evaluation;

public static class ArmKinds
{
    public const string PreTrained = "pre-trained", Clean = "clean", Protected = "protected";
}

/// <summary>
/// One hacker model to produce and score: an architecture trained (or, for <see cref="ArmKinds.PreTrained"/>,
/// not trained) on the training split with a <paramref name="Fraction"/> of it protected, after an optional countermeasure.
/// </summary>
public sealed record ArmPlan(string Name, string Kind, string Architecture, double Fraction, string? Countermeasure)
{
    /// <summary>A folder name for the arm's work files.</summary>
    public string Slug => new(Name.Select(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '.' ? c : '_').ToArray());

    /// <summary>
    /// The arms a spec asks for, the same-architecture ones first (pre-trained for fine-tuning,
    /// clean, protected), then transfer, poison fraction and robustness arms.
    /// </summary>
    public static List<ArmPlan> For(AttackSpec spec)
    {
        var arms = new List<ArmPlan>();
        bool fineTune = spec.Attack.Mode == AttackMode.FineTune, hasProtection = spec.Protection.Source != ProtectionSource.None;
        foreach (var arch in new[] { spec.Preset }.Concat(spec.Arms.TransferArchitectures).Distinct(StringComparer.OrdinalIgnoreCase))
        {
            string tag = arch.Equals(spec.Preset, StringComparison.OrdinalIgnoreCase) ? "" : $" [{arch}]";
            if (fineTune) arms.Add(new ArmPlan(ArmKinds.PreTrained + tag, ArmKinds.PreTrained, arch, 0, null));
            arms.Add(new ArmPlan(ArmKinds.Clean + tag, ArmKinds.Clean, arch, 0, null));
            if (hasProtection) arms.Add(new ArmPlan(ArmKinds.Protected + tag, ArmKinds.Protected, arch, 1, null));
        }
        foreach (var fraction in spec.Arms.PoisonFractions.Where(f => f is > 0 and < 1).Distinct())
            arms.Add(new ArmPlan($"protected {(fraction * 100).ToString("0.#", CultureInfo.InvariantCulture)}%", ArmKinds.Protected, spec.Preset, fraction, null));
        foreach (var countermeasure in spec.Arms.HackerCountermeasures.Distinct())
        {
            if (spec.Arms.CountermeasuresOnClean) arms.Add(new ArmPlan($"clean + {countermeasure}", ArmKinds.Clean, spec.Preset, 0, countermeasure));
            if (hasProtection) arms.Add(new ArmPlan($"protected + {countermeasure}", ArmKinds.Protected, spec.Preset, 1, countermeasure));
        }
        return arms;
    }
}
