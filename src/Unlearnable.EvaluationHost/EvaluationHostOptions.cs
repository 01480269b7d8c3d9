using Unlearnable.Hosting;

namespace Unlearnable.EvaluationHost;

/// <summary>The "Evaluation" configuration section.</summary>
public sealed class EvaluationHostOptions
{
    /// <summary>Holds jobs.db and one output folder per job (jobs/ID); spec paths are relative to it and confined to it.</summary>
    public string DataDirectory { get; set; } = "data/evaluation";

    /// <summary>
    /// The job queue: SQLite (jobs.db in the data folder; one host, the default) or PostgreSQL,
    /// which several hosts share (they must share the data folder too, so a job resumes anywhere).
    /// </summary>
    public StoreOptions Store { get; set; } = new();

    /// <summary>
    /// How long a running job stays its worker's without a renewal (renewed every second): a host
    /// that dies gives its job up to another host after this long.
    /// </summary>
    public TimeSpan Lease { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>auto, cpu or cuda[:N]: the one device jobs run on, one at a time.</summary>
    public string Device { get; set; } = "auto";

    /// <summary>API keys (x-api-key) for every call but health and reflection; required outside Development.</summary>
    public AuthOptions Auth { get; set; } = new();

    /// <summary>
    /// The sidecars a job may send its training images to, each with the key this host presents.
    /// A spec names one by address and never carries a key.
    /// </summary>
    public List<SidecarEndpoint> Sidecars { get; set; } = [];

    /// <summary>Starts a job may take: one that stopped the host this often (out of memory, killed) fails with that reason.</summary>
    public int MaxAttempts { get; set; } = 3;

    /// <summary>
    /// Free space jobs must leave on the data volume: below it no job is queued (RESOURCE_EXHAUSTED) and a running job
    /// fails with its work kept; 0 = no floor. Checkpoints of real-size models take gigabytes per arm.
    /// </summary>
    public long MinFreeDiskBytes { get; set; } = 2L << 30;

    /// <summary>Jobs one tenant may have queued or running at once, so one key cannot fill the queue (or the disk) for everyone.</summary>
    public int MaxActiveJobsPerTenant { get; set; } = 16;

    /// <summary>Ended jobs older than this are deleted with their folders.</summary>
    public TimeSpan Retention { get; set; } = TimeSpan.FromDays(30);

    /// <summary>The host's own files in the data directory (specs may not name them).</summary>
    public const string JobStoreFile = "jobs.db", JobsFolder = "jobs";

    public string DatabasePath => Path.Combine(Path.GetFullPath(DataDirectory), JobStoreFile);
    public string JobFolder(string jobId) => Path.Combine(Path.GetFullPath(DataDirectory), JobsFolder, jobId);
}

public sealed class SidecarEndpoint
{
    public string Address { get; set; } = "";
    public string? ApiKey { get; set; }
}
