using System.Text.Json;
using System.Text.Json.Nodes;

namespace Unlearnable.Evaluation;

/// <summary>One kept share over repeated runs: the mean and the range (percent), and how many runs gave a figure.</summary>
public sealed record KeptSpread(double Mean, double Min, double Max, int Runs)
{
    public static KeptSpread? Of(IEnumerable<double?> perRun)
    {
        var values = perRun.OfType<double>().ToList();
        return values.Count == 0 ? null : new KeptSpread(values.Average(), values.Min(), values.Max(), values.Count);
    }
}

/// <summary>A row of the summary: a protected arm (or the mean over unseen releases, or the worst case) in both directions.</summary>
public sealed record RowSpread(string Row, KeptSpread? ImageToText, KeptSpread? TextToImage)
{
    /// <summary>Runs that gave this row a figure in either direction.</summary>
    public int Runs => Math.Max(ImageToText?.Runs ?? 0, TextToImage?.Runs ?? 0);
}

/// <summary>
/// Repeats of one attack job (the same spec with another <c>protection.seed</c> or <c>seed</c>) read together: per protected
/// arm of the hacker's architecture, the mean and range of what protection kept in each direction; per run the mean over
/// the unseen releases (<c>arms.releases</c>, as sent and after each defence) and the worst case, then their mean and
/// range. Kept shares are the reports' own (<see cref="ProtectionVerdict"/>), so the summary reads what each job wrote.
/// </summary>
public sealed record RepeatSummary(string Name, IReadOnlyList<string> Runs, IReadOnlyList<string> Seeds, IReadOnlyList<RowSpread> Rows)
{
    public const string UnseenRow = "unseen releases (mean)", WorstRow = "worst case";

    public static RepeatSummary Of(IReadOnlyList<(string Folder, AttackReport Report)> runs)
    {
        if (runs.Count < 2) throw new ArgumentException($"{runs.Count} run given; a spread needs two or more repeats of one job");
        EnsureRepeats(runs);
        var verdicts = runs.Select(r => r.Report.Verdict ?? throw new ArgumentException(
            $"{r.Folder} has no clean and protected arm to compare; a summary reads jobs that protect and train a clean hacker")).ToList();

        var rows = new List<RowSpread>();
        foreach (var arm in verdicts.SelectMany(v => v.Arms).Select(a => a.Arm).Distinct())
        {
            var kept = verdicts.Select(v => v.Arms.FirstOrDefault(a => a.Arm == arm)).ToList();
            rows.Add(new RowSpread(arm, KeptSpread.Of(kept.Select(a => a?.ImageToText)), KeptSpread.Of(kept.Select(a => a?.TextToImage))));
        }
        // Unseen releases per defence: the arms of a release other than the one the protection was made on, averaged per run first.
        var unseen = runs.Select(r => r.Report.Arms.Where(a => a.Release is not null).Select(a => a.Name).ToHashSet()).ToList();
        foreach (var defence in verdicts.SelectMany(v => v.Arms).Where(a => unseen.Any(u => u.Contains(a.Arm))).Select(a => a.Defence).Distinct())
        {
            double? Mean(int run, Func<ArmKept, double?> kept) =>
                KeptSpread.Of(verdicts[run].Arms.Where(a => unseen[run].Contains(a.Arm) && a.Defence == defence).Select(kept))?.Mean;
            rows.Add(new RowSpread(defence is null ? UnseenRow : $"{UnseenRow} after {defence}",
                KeptSpread.Of(Enumerable.Range(0, runs.Count).Select(i => Mean(i, a => a.ImageToText))),
                KeptSpread.Of(Enumerable.Range(0, runs.Count).Select(i => Mean(i, a => a.TextToImage)))));
        }
        rows.Add(new RowSpread(WorstRow, KeptSpread.Of(verdicts.Select(v => v.WorstImageToText.Kept)), KeptSpread.Of(verdicts.Select(v => v.WorstTextToImage.Kept))));

        var seeds = runs.Select(r => $"{r.Report.Spec.Seed}/{r.Report.Spec.ProtectionSeed}").ToList();
        return new RepeatSummary(runs[0].Report.Spec.Name, runs.Select(r => r.Folder).ToList(), seeds, rows);
    }

    /// <summary>Refuses runs that are not repeats: specs that differ beyond the seeds (naming the first field), or the same seeds twice.</summary>
    static void EnsureRepeats(IReadOnlyList<(string Folder, AttackReport Report)> runs)
    {
        var first = Comparable(runs[0].Report.Spec);
        var seen = new Dictionary<(int, int), string>();
        foreach (var (folder, report) in runs)
        {
            if (FirstDifference(first, Comparable(report.Spec), "") is { } field)
                throw new ArgumentException($"{folder} is not a repeat of {runs[0].Folder}: its spec differs at '{field}' (repeats differ only in seed and protection.seed)");
            var seeds = (report.Spec.Seed, report.Spec.ProtectionSeed);
            if (seen.TryGetValue(seeds, out var twin))
                throw new ArgumentException($"{folder} repeats {twin} with the same seeds (seed {seeds.Item1}, protection seed {seeds.Item2}); a repeat needs another seed");
            seen[seeds] = folder;
        }
    }

    static JsonNode? Comparable(AttackSpec spec) =>
        JsonNode.Parse((spec.WithoutSecrets() with { Name = "", Seed = 0, Protection = spec.Protection with { Seed = null } }).ToJson());

    static string? FirstDifference(JsonNode? a, JsonNode? b, string path)
    {
        if (a is JsonObject oa && b is JsonObject ob)
        {
            foreach (var key in oa.Select(p => p.Key).Union(ob.Select(p => p.Key)))
                if (FirstDifference(oa[key], ob[key], path.Length == 0 ? key : $"{path}.{key}") is { } field) return field;
            return null;
        }
        return JsonNode.DeepEquals(a, b) ? null : path.Length == 0 ? "$" : path;
    }

    /// <summary>Reads a job folder's report.json (written by <see cref="AttackReportWriter"/>); a folder without one is refused naming it.</summary>
    public static AttackReport ReadReport(string folder)
    {
        var path = Path.Combine(folder, "report.json");
        if (!File.Exists(path)) throw new FileNotFoundException($"{folder} has no report.json: not an evaluate-attack output folder, or its job has not finished");
        try
        {
            return JsonSerializer.Deserialize<AttackReport>(File.ReadAllText(path), ReportJson) ?? throw new InvalidDataException($"{path} is empty (null)");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path} is not a readable report: {e.Message.Split(" Path:")[0]}");
        }
    }

    // Reports also carry what is derived on writing (the verdict, the recipe): read past it.
    static readonly JsonSerializerOptions ReportJson = new(AttackSpec.Json) { UnmappedMemberHandling = System.Text.Json.Serialization.JsonUnmappedMemberHandling.Skip };
}
