using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;

namespace Unlearnable.Hosting;

/// <summary>
/// glibc gives a process up to 8 malloc arenas per core, and the hosts free tensors and image
/// buffers on other threads than allocated them, so every arena keeps memory it never returns.
/// Measured on 2 cores: a sidecar's resident memory grew from 1.3 to 2.1 GB over 3,200 posts with
/// glibc's default, and stayed at 0.85–0.89 GB with MALLOC_ARENA_MAX=2 at the same throughput.
/// glibc reads the limit once, before any code of ours runs, so it can only come from the
/// environment: the container images set it, and a host started without it says so.
/// <para>
/// glibc also hands blocks above a threshold (128 KiB at first, raised as such blocks are freed) to mmap,
/// and gives free memory at a heap's top back to the OS past another; the next allocation then faults its
/// pages in again, zeroed by the kernel. A sidecar frees megabytes of image buffers per post between
/// batches and libtorch allocates and frees its tensors at every step, so both kept paying for fresh
/// pages: on 2 cores, 16 users posting 512-pixel photos, batches took 1.21–1.35 s against the 1.07 s
/// they take with fixed thresholds, and finishing a post 20 against 15 ms. <see cref="KeepFreedMemory"/>
/// fixes them (which also stops glibc's adjusting); unlike the arena count they can be set at run time.
/// </para>
/// </summary>
public static partial class GlibcMalloc
{
    public const string ArenaVariable = "MALLOC_ARENA_MAX";
    public const int Arenas = 2;

    public static void WarnIfArenasUncapped(ILogger log)
    {
        if (OperatingSystem.IsLinux() && string.IsNullOrEmpty(Environment.GetEnvironmentVariable(ArenaVariable)))
            log.LogWarning("{Variable} is not set: resident memory will grow with glibc's default malloc arenas over a long run; start the host with {Variable}={Arenas} (the container images do)",
                ArenaVariable, ArenaVariable, Arenas);
    }

    const int TrimThreshold = -1, TopPad = -2, MmapThreshold = -3;   // mallopt's parameter numbers (malloc.h)

    /// <summary>
    /// Keeps freed blocks of up to 32 MiB in the process for reuse (glibc's ceiling for this threshold on 64 bits),
    /// returns a heap's top to the OS only past 256 MiB free, and grows a heap 64 MiB at a time.
    /// </summary>
    /// <returns>The settings the C library refused: all three where it is not glibc (nothing is changed), none normally.</returns>
    public static IReadOnlyList<string> KeepFreedMemory()
    {
        string[] all = ["mmap threshold", "trim threshold", "top pad"];
        if (!OperatingSystem.IsLinux()) return all;
        try
        {
            var refused = new List<string>();
            if (Mallopt(MmapThreshold, 32 << 20) != 1) refused.Add(all[0]);
            if (Mallopt(TrimThreshold, 256 << 20) != 1) refused.Add(all[1]);
            if (Mallopt(TopPad, 64 << 20) != 1) refused.Add(all[2]);
            return refused;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { return all; }   // musl, for one
    }

    [LibraryImport("libc.so.6", EntryPoint = "mallopt")]
    private static partial int Mallopt(int parameter, int value);
}
