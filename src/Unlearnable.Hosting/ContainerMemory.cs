namespace Unlearnable.Hosting;

/// <summary>
/// The memory this process may use: the lowest memory limit of its cgroup and the cgroups above it (v2 <c>memory.max</c>,
/// v1 <c>memory.limit_in_bytes</c>; found from <c>/proc/self/cgroup</c>, so a limit set on a parent or seen without a
/// cgroup namespace counts too), and the machine's memory. Not the GC's figure: in a container .NET caps its managed heap
/// at 75 % of the limit and reports that cap as its available memory, while libtorch and the image codecs allocate
/// outside it.
/// </summary>
public static class ContainerMemory
{
    public static long Limit() =>
        Limit("/sys/fs/cgroup", File.Exists("/proc/self/cgroup") ? File.ReadAllLines("/proc/self/cgroup") : [], MachineBytes());

    /// <param name="root">Where the cgroup hierarchies are mounted.</param>
    /// <param name="cgroups">The lines of /proc/self/cgroup: "0::/path" (v2) or "N:controllers:/path" (v1).</param>
    /// <param name="machine">The machine's memory, the limit where no cgroup sets one.</param>
    public static long Limit(string root, IEnumerable<string> cgroups, long machine)
    {
        long limit = machine;
        foreach (var line in cgroups)
        {
            var parts = line.Split(':', 3);
            if (parts.Length != 3) continue;
            bool unified = parts[0] == "0" && parts[1] == "";
            if (!unified && !parts[1].Split(',').Contains("memory")) continue;
            var (hierarchy, file) = unified ? (root, "memory.max") : (Path.Combine(root, "memory"), "memory.limit_in_bytes");
            // The process's own cgroup, then each one above it up to the hierarchy's root ("max" and v1's huge "unlimited" never win).
            for (var path = parts[2].Trim('/'); ; path = path.Contains('/') ? path[..path.LastIndexOf('/')] : "")
            {
                if (Read(Path.Combine(hierarchy, path, file)) is { } value) limit = Math.Min(limit, value);
                if (path.Length == 0) break;
            }
        }
        return limit;
    }

    static long? Read(string file)
    {
        try { return File.Exists(file) && long.TryParse(File.ReadAllText(file).Trim(), out long value) && value > 0 ? value : null; }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; }
    }

    /// <summary>The machine's physical memory (/proc/meminfo's MemTotal), else the GC's figure.</summary>
    static long MachineBytes()
    {
        try
        {
            var line = File.ReadLines("/proc/meminfo").FirstOrDefault(l => l.StartsWith("MemTotal:", StringComparison.Ordinal));
            var parts = line?.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (parts is { Length: >= 2 } && long.TryParse(parts[1], out long kib)) return kib * 1024;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        return GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
    }
}
