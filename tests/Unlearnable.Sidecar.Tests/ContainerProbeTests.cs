using System.Diagnostics;
using System.Text.RegularExpressions;
using Unlearnable.Tests;

namespace Unlearnable.Sidecar.Tests;

/// <summary>
/// The container health checks as written: the Dockerfile's HEALTHCHECK and compose's healthcheck run
/// the host's own binary with --probe, and that command says yes to a serving sidecar and no otherwise.
/// </summary>
[Trait("Kind", "Process")]
public partial class ContainerProbeTests(SharedSidecar shared) : IClassFixture<SharedSidecar>
{
    static string Root() => RepoFiles.Root;

    // The exec-form argument list, as the Dockerfile's HEALTHCHECK CMD [...] and compose's test: ["CMD", ...] both write it.
    [GeneratedRegex("""[\[ ]"dotnet", "unlearnable-sidecar\.dll", "--probe", "http://127\.0\.0\.1:5052/healthz"\]""")]
    private static partial Regex SidecarProbe();

    static (int Code, string Output) Probe(string url) => SidecarCommand.Run(["--probe", url], within: TimeSpan.FromSeconds(60));

    [Fact]
    public void TheHealthCheckCommandTheImagesRunAnswersForTheSidecar()
    {
        // The same command in the Dockerfile and in compose (there on the image's port 5052).
        Assert.Matches(SidecarProbe(), File.ReadAllText(Path.Combine(Root(), "deploy", "Dockerfile.sidecar")));
        Assert.Matches(SidecarProbe(), File.ReadAllText(Path.Combine(Root(), "deploy", "compose.yaml")));

        var serving = Probe($"http://127.0.0.1:{shared.Server.HttpPort}/healthz");
        Assert.True(serving.Code == 0, serving.Output);
        Assert.Contains("SERVING", serving.Output);
        var nobody = Probe($"http://127.0.0.1:{LoopbackPorts.Free()}/healthz");
        Assert.Equal(1, nobody.Code);
        Assert.Contains("unreachable", nobody.Output);
        Assert.Equal(2, Probe("not-a-url").Code);
    }
}
