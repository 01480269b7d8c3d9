namespace Unlearnable.Hosting;

/// <summary>
/// The memory this process may use: its container's limit (cgroup v2 <c>memory.max</c>, or v1
/// <c>memory.limit_in_bytes</c>), else the machine's. Not the GC's figure: in a container .NET caps its managed heap at
/// 75 % of the limit and reports that cap as its available memory, while libtorch and image codecs allocate outside it.
/// </summary>
public static class ContainerMemory
{
    static readonly string[] LimitFiles = ["/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"];

    public static long Limit()
    {
        long machine = MachineBytes();
        foreach (var file in LimitFiles)
        {
            try
            {
                if (File.Exists(file) && long.TryParse(File.ReadAllText(file).Trim(), out long limit) && limit > 0) return Math.Min(limit, machine);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        }
        return machine;
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
