using Microsoft.Extensions.Options;
using Unlearnable.Evaluation;

namespace Unlearnable.EvaluationHost.Jobs;

/// <summary>
/// What a client's spec may make this host do, checked before the job is queued and applied
/// again when it runs: every path stays inside the data directory (<see cref="ConfinedPath"/>),
/// the sidecar is one the host is configured to use, and the spec carries no secret: the host
/// adds that sidecar's key when the job runs, so a key is never stored, listed or reported.
/// </summary>
public sealed class SpecAdmission(IOptions<EvaluationHostOptions> options)
{
    /// <summary>The spec with its paths resolved, or every reason it may not run here.</summary>
    public (AttackSpec? Spec, List<SpecViolation> Problems) Admit(AttackSpec spec)
    {
        var problems = new List<SpecViolation>();
        var root = Path.GetFullPath(options.Value.DataDirectory);
        var own = OwnFiles(root);
        string? Confine(string? path, string field)
        {
            if (path is null) return null;
            var real = ConfinedPath.Resolve(path, root, out var why);
            if (real is not null && own.Any(o => real == o || real.StartsWith(o + Path.DirectorySeparatorChar, StringComparison.Ordinal)
                                               || real.StartsWith(o + "-", StringComparison.Ordinal)))   // jobs.db-wal, jobs.db-shm
                (real, why) = (null, "names the host's own files (its job store or the job folders), which no spec may read");
            if (real is null) problems.Add(new SpecViolation(field, why));
            return real;
        }
        var resolved = spec with
        {
            Data = spec.Data with { Path = Confine(spec.Data.Path, "data.path") },
            Protection = spec.Protection with { Path = Confine(spec.Protection.Path, "protection.path") },
            Attack = spec.Attack with { PreTrained = Confine(spec.Attack.PreTrained, "attack.preTrained"), PreTrainFaces = Confine(spec.Attack.PreTrainFaces, "attack.preTrainFaces") },
        };
        var p = spec.Protection;
        // The host started libtorch before any job, so it cannot lift oneDNN's cap for one (docs/platform.md).
        if (p.Precision == Clip.Model.MatmulPrecision.Bfloat16 && Clip.Runtime.TorchRuntime.BFloat16KernelsMissing() is { } missing)
            problems.Add(new SpecViolation("protection.precision", $"bfloat16 would run slower than float32 on this host: {missing}; use float32"));
        if (p.SidecarApiKey is not null)
            problems.Add(new SpecViolation("protection.sidecarApiKey", "a spec must not carry secrets: this host presents the key configured for the sidecar (Evaluation:Sidecars)"));
        if (p.Source == ProtectionSource.Sidecar && Endpoint(p.SidecarAddress) is null)
            problems.Add(new SpecViolation("protection.sidecarAddress", $"'{p.SidecarAddress}' is not a sidecar this host may post to; configured: " +
                (options.Value.Sidecars.Count == 0 ? "none (Evaluation:Sidecars)" : string.Join(", ", options.Value.Sidecars.Select(s => s.Address)))));
        if (problems.Count > 0) return (null, problems);
        problems.AddRange(SpecValidator.Check(resolved));
        return (problems.Count == 0 ? resolved : null, problems);
    }

    // The job store and the job folders sit in the data directory: a spec naming them would read other jobs' models,
    // reports and specs. Resolved as a spec's paths are, so a link to them is caught too.
    static List<string> OwnFiles(string root) =>
        new[] { EvaluationHostOptions.JobStoreFile, EvaluationHostOptions.JobsFolder }
            .Select(name => ConfinedPath.Resolve(name, root, out _)).OfType<string>().ToList();

    /// <summary>The spec as the job runs it: admitted again (the folders may have changed), with the sidecar's key added.</summary>
    public AttackSpec ForRun(AttackSpec spec)
    {
        var (admitted, problems) = Admit(spec);
        if (admitted is null) throw new SpecException(problems);
        return admitted.Protection.Source == ProtectionSource.Sidecar
            ? admitted with { Protection = admitted.Protection with { SidecarApiKey = Endpoint(admitted.Protection.SidecarAddress)!.ApiKey } }
            : admitted;
    }

    SidecarEndpoint? Endpoint(string? address) => address is null ? null :
        options.Value.Sidecars.FirstOrDefault(s => string.Equals(s.Address.TrimEnd('/'), address.TrimEnd('/'), StringComparison.OrdinalIgnoreCase));
}
