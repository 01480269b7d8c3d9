using Unlearnable.Hosting;
using Unlearnable.Tests;

namespace Unlearnable.Sidecar.Tests;

/// <summary>The container's memory limit as cgroup files give it, on a made-up hierarchy (v1 and v2, limits on parents).</summary>
public class ContainerMemoryTests
{
    const long Machine = 16L << 30;

    static string Hierarchy(params (string Path, string Value)[] files)
    {
        var root = TestFolders.New();
        foreach (var (path, value) in files)
        {
            var file = Path.Combine(root, path);
            Directory.CreateDirectory(Path.GetDirectoryName(file)!);
            File.WriteAllText(file, value + "\n");
        }
        return root;
    }

    [Fact]
    public void AV2LimitOnTheCgroupOrAParentIsTheLowestAndMaxSetsNone()
    {
        var root = Hierarchy(("memory.max", "max"), ("kubepods/memory.max", "8589934592"), ("kubepods/pod1/memory.max", "4294967296"),
            ("kubepods/pod1/app/memory.max", "max"));
        Assert.Equal(4L << 30, ContainerMemory.Limit(root, ["0::/kubepods/pod1/app"], Machine));   // seen from the host: the pod's limit
        Assert.Equal(Machine, ContainerMemory.Limit(root, ["0::/"], Machine));                     // the root says max
        Assert.Equal(2L << 30, ContainerMemory.Limit(Hierarchy(("memory.max", "2147483648")), ["0::/"], Machine));   // a namespaced container
    }

    [Fact]
    public void AV1LimitIsReadFromTheMemoryHierarchyAndItsUnlimitedValueSetsNone()
    {
        var root = Hierarchy(("memory/memory.limit_in_bytes", "9223372036854771712"), ("memory/docker/abc/memory.limit_in_bytes", "3221225472"),
            ("cpu/docker/abc/memory.limit_in_bytes", "1"));   // another controller's folder is not read
        Assert.Equal(3L << 30, ContainerMemory.Limit(root, ["5:cpu,cpuacct:/docker/abc", "9:memory:/docker/abc", "1:name=systemd:/"], Machine));
        Assert.Equal(Machine, ContainerMemory.Limit(root, ["9:memory:/"], Machine));
    }

    [Fact]
    public void NoCgroupFilesLeaveTheMachinesMemoryAndThisMachineHasSome()
    {
        Assert.Equal(Machine, ContainerMemory.Limit(TestFolders.New(), ["0::/nowhere"], Machine));
        Assert.InRange(ContainerMemory.Limit(), 1L << 30, long.MaxValue);
    }
}
