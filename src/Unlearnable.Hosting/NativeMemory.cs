using Microsoft.Extensions.Logging;

namespace Unlearnable.Hosting;

/// <summary>
/// glibc gives a process up to 8 malloc arenas per core, and the hosts free tensors and image
/// buffers on other threads than allocated them, so every arena keeps memory it never returns.
/// Measured on 2 cores: a sidecar's resident memory grew from 1.3 to 2.1 GB over 3,200 posts with
/// glibc's default, and stayed at 0.85–0.89 GB with MALLOC_ARENA_MAX=2 at the same throughput.
/// glibc reads the limit once, before any code of ours runs, so it can only come from the
/// environment: the container images set it, and a host started without it says so.
/// </summary>
public static class NativeMemory
{
    public const string ArenaVariable = "MALLOC_ARENA_MAX";
    public const int Arenas = 2;

    public static void WarnIfArenasUncapped(ILogger log)
    {
        if (OperatingSystem.IsLinux() && string.IsNullOrEmpty(Environment.GetEnvironmentVariable(ArenaVariable)))
            log.LogWarning("{Variable} is not set: resident memory will grow with glibc's default malloc arenas over a long run; start the host with {Variable}={Arenas} (the container images do)",
                ArenaVariable, ArenaVariable, Arenas);
    }
}
