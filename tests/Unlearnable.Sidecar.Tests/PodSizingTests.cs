using Unlearnable.Tests;

namespace Unlearnable.Sidecar.Tests;

/// <summary>The sidecar sizes its thread pools by the cores its container gets (DOTNET_PROCESSOR_COUNT, as the manifests set it), not the node's.</summary>
[Trait("Kind", "Process")]
public class PodSizingTests
{
    static async Task<Dictionary<string, double>> Threads(SidecarProcess sidecar)
    {
        using var http = new HttpClient();
        var metrics = await http.GetStringAsync($"http://127.0.0.1:{sidecar.HttpPort}/metrics");
        return System.Text.RegularExpressions.Regex.Matches(metrics, "^unlearnable_threads\\{pool=\"(\\w+)\"\\} (\\d+)", System.Text.RegularExpressions.RegexOptions.Multiline)
            .ToDictionary(m => m.Groups[1].Value, m => double.Parse(m.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture));
    }

    [Fact]
    public async Task OneCpuMeansOneCodecSlotAndOneTorchThread()
    {
        await using var sidecar = await SidecarProcess.StartAsync(TestFolders.New(), new Dictionary<string, string> { ["DOTNET_PROCESSOR_COUNT"] = "1" });
        var threads = await Threads(sidecar);
        Assert.Equal(1, threads["codec"]);
        Assert.Equal(1, threads["torch"]);
    }

    [Fact]
    public async Task OmpNumThreadsWinsForTorch()
    {
        await using var sidecar = await SidecarProcess.StartAsync(TestFolders.New(), new Dictionary<string, string> { ["DOTNET_PROCESSOR_COUNT"] = "2", ["OMP_NUM_THREADS"] = "1" });
        var threads = await Threads(sidecar);
        Assert.Equal(2, threads["codec"]);
        Assert.Equal(1, threads["torch"]);
    }

    [Fact]
    public async Task TheDotnetHeapCapIsNotTakenForTheMemoryTheServerMayUse()
    {
        // In a container .NET caps its heap at 75 % of the limit and reports the cap as the memory available; a 4 GiB pod
        // would then look like 3 GiB and the default limits (3.8 GiB) would refuse to start. The cap set here, 1.5 GiB,
        // stands in for that: the server still starts, since it reads the container's (here the machine's) memory.
        await using var sidecar = await SidecarProcess.StartAsync(TestFolders.New(), new Dictionary<string, string> { ["DOTNET_GCHeapHardLimit"] = "0x60000000" });
        Assert.Equal(Grpc.Health.V1.HealthCheckResponse.Types.ServingStatus.Serving,
            (await new Grpc.Health.V1.Health.HealthClient(sidecar.Channel).CheckAsync(new Grpc.Health.V1.HealthCheckRequest())).Status);
        Assert.InRange(Hosting.ContainerMemory.Limit(), 1L << 30, long.MaxValue);
    }
}
