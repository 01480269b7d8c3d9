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
/// <param name="Release">Fine-tuning from another release of the public model than the hacker's own (<c>arms.releases</c>); null = theirs.</param>
public sealed record ArmPlan(string Name, string Kind, string Architecture, double Fraction, string? Countermeasure, int? Release = null)
{
    /// <summary>A folder name for the arm's work files.</summary>
    public string Slug => new(Name.Select(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '.' ? c : '_').ToArray());

    /// <summary>
    /// The arms a spec asks for, the same-architecture ones first (pre-trained for fine-tuning,
    /// clean, protected), then transfer, poison fraction and robustness arms, then the same again for each
    /// other release of the public model the hacker may download (<c>arms.releases</c>; robustness on the spec's architecture).
    /// </summary>
    public static List<ArmPlan> For(AttackSpec spec)
    {
        var arms = new List<ArmPlan>();
        bool fineTune = spec.Attack.Mode == AttackMode.FineTune, hasProtection = spec.Protection.Source != ProtectionSource.None;
        foreach (var release in new int?[] { null }.Concat(spec.Arms.HackerReleases.Distinct().Select(r => (int?)r)))
        {
            string Tag(string arch) => (arch.Equals(spec.Preset, StringComparison.OrdinalIgnoreCase), release) switch
            {
                (true, null) => "",
                (false, null) => $" [{arch}]",
                (true, { } r) => $" [release {r}]",
                (false, { } r) => $" [{arch}, release {r}]",
            };
            foreach (var arch in new[] { spec.Preset }.Concat(spec.Arms.TransferArchitectures).Distinct(StringComparer.OrdinalIgnoreCase))
            {
                if (fineTune) arms.Add(new ArmPlan(ArmKinds.PreTrained + Tag(arch), ArmKinds.PreTrained, arch, 0, null, release));
                arms.Add(new ArmPlan(ArmKinds.Clean + Tag(arch), ArmKinds.Clean, arch, 0, null, release));
                if (hasProtection) arms.Add(new ArmPlan(ArmKinds.Protected + Tag(arch), ArmKinds.Protected, arch, 1, null, release));
            }
            if (release is null)
                foreach (var fraction in spec.Arms.PoisonFractions.Where(f => f is > 0 and < 1).Distinct())
                    arms.Add(new ArmPlan($"protected {(fraction * 100).ToString("0.#", CultureInfo.InvariantCulture)}%", ArmKinds.Protected, spec.Preset, fraction, null));
            foreach (var countermeasure in spec.Arms.HackerCountermeasures.Distinct())
            {
                if (spec.Arms.CountermeasuresOnClean) arms.Add(new ArmPlan($"clean + {countermeasure}{Tag(spec.Preset)}", ArmKinds.Clean, spec.Preset, 0, countermeasure, release));
                if (hasProtection) arms.Add(new ArmPlan($"protected + {countermeasure}{Tag(spec.Preset)}", ArmKinds.Protected, spec.Preset, 1, countermeasure, release));
            }
        }
        return arms;
    }
}
