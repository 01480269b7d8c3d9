using Microsoft.Extensions.Options;

namespace Unlearnable.EvaluationHost.Jobs;

/// <summary>
/// The free space jobs leave on the data volume (<see cref="EvaluationHostOptions.MinFreeDiskBytes"/>): a job is not
/// queued below it, and a running job that takes the volume below it fails there, its work so far kept, rather than
/// filling the disk the job store and every other job share. Read live, so raising it needs no restart.
/// </summary>
public sealed class DiskFloor(IOptionsMonitor<EvaluationHostOptions> options)
{
    /// <summary>Why the volume is too full for jobs, or null when it is not (or no floor is set, or the space cannot be read).</summary>
    public string? Shortfall()
    {
        var settings = options.CurrentValue;
        if (settings.MinFreeDiskBytes <= 0) return null;
        var folder = Path.GetFullPath(settings.DataDirectory);
        long free;
        try { free = new DriveInfo(folder).AvailableFreeSpace; }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException) { return null; }   // unknown: jobs are not held up for it
        return free >= settings.MinFreeDiskBytes ? null
            : $"the data volume ({folder}) has {Gib(free)} free; jobs must leave {Gib(settings.MinFreeDiskBytes)} (Evaluation:MinFreeDiskBytes)";
    }

    static string Gib(long bytes) => $"{bytes / (double)(1L << 30):F1} GiB";
}
