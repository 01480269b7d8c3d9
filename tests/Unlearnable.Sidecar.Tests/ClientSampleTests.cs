using System.Diagnostics;
using System.Text.Json.Nodes;
using Unlearnable.ClientSample;
using Unlearnable.Imaging;
using Unlearnable.LoadTest;
using Unlearnable.Protection;
using Unlearnable.Tests;

namespace Unlearnable.Sidecar.Tests;

/// <summary>The shipped clients (Python, Node, C#, the load tester) against the real sidecar on loopback.</summary>
[Collection("sidecar")]
[Trait("Kind", "Process")]
public class ClientSampleTests(SharedSidecar shared) : IClassFixture<SharedSidecar>
{
    SidecarServer Server => shared.Server;

    static readonly string Root = RepoFiles.Root;

    static readonly Lazy<bool> Setup = new(() =>
    {
        var (code, output) = Run("/bin/bash", [Path.Combine(Root, "build", "setup-client-samples.sh")]);
        Assert.True(code == 0, "build/setup-client-samples.sh failed: " + output);
        return true;
    });

    static (int Code, string Output) Run(string program, IEnumerable<string> arguments)
    {
        var start = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = Root };
        foreach (var a in arguments) start.ArgumentList.Add(a);
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromMinutes(5))) { process.Kill(true); return (-1, "timed out"); }
        return (process.ExitCode, stdout.Result + stderr.Result);
    }

    void AssertProtected(byte[] input, string outputPath, string caption, string protectedCaption, string trigger)
    {
        var output = File.ReadAllBytes(outputPath);
        Assert.True(output.AsSpan().IndexOf("Exif"u8) < 0, "EXIF survived");
        using var a = SafeImageDecoder.Decode(input);
        using var b = SafeImageDecoder.Decode(output);
        Assert.Equal((a.Width, a.Height), (b.Width, b.Height));
        Assert.InRange(PixelDifference.LInfinity(a, b), 1, 8);
        Assert.False(string.IsNullOrWhiteSpace(trigger));
        Assert.Equal(trigger + " " + caption, protectedCaption);
    }

    [Theory]
    [InlineData("python")]
    [InlineData("node")]
    public async Task TheScriptingSamplesProtectAPostAndWriteIt(string language)
    {
        _ = Setup.Value;
        var folder = Path.Combine(Server.Folder, language);
        Directory.CreateDirectory(folder);
        var input = TestImages.JpegWithExif(90, 70);
        var inputPath = Path.Combine(folder, "in.jpg");
        var outputPath = Path.Combine(folder, "out.png");
        await File.WriteAllBytesAsync(inputPath, input);
        const string caption = "our dog at the lake";
        string[] common = ["--address", $"127.0.0.1:{Server.GrpcPort}", "--api-key", SidecarServer.ApiKey, "--user", language, "--post", "sample-1",
            "--image", inputPath, "--caption", caption, "--out", outputPath];
        var (code, output) = language == "python"
            ? Run("/usr/bin/python3", new[] { Path.Combine(Root, "client-samples", "python", "protect_post.py") }.Concat(common))
            : Run("node", new[] { Path.Combine(Root, "client-samples", "node", "protect-post.js") }.Concat(common));
        Assert.True(code == 0, output);
        var json = JsonNode.Parse(output.Trim().Split('\n')[^1])!;
        AssertProtected(input, outputPath, caption, json["protected_caption"]!.GetValue<string>(), json["trigger"]!.GetValue<string>());

        var (badCode, badOutput) = language == "python"
            ? Run("/usr/bin/python3", [Path.Combine(Root, "client-samples", "python", "protect_post.py"), .. common[..2], "--api-key", "wrong", .. common[4..]])
            : Run("node", [Path.Combine(Root, "client-samples", "node", "protect-post.js"), .. common[..2], "--api-key", "wrong", .. common[4..]]);
        Assert.NotEqual(0, badCode);
        Assert.Contains("UNAUTHENTICATED", badOutput);
    }

    [Fact]
    public async Task TheCSharpClientProtectsBeforePublishAndOverASession()
    {
        using var client = new SidecarClient($"http://127.0.0.1:{Server.GrpcPort}", SidecarServer.ApiKey);
        var input = TestImages.Jpeg(80, 60);
        var response = await client.ProtectBeforePublishAsync("csharp", "c1", input, "a quiet street");
        var path = Path.Combine(Server.Folder, "csharp.png");
        await File.WriteAllBytesAsync(path, response.Image.ToByteArray());
        AssertProtected(input, path, "a quiet street", response.ProtectedCaption, response.Trigger);

        var posts = Enumerable.Range(0, 3).Select(i => ($"s{i}", TestImages.Jpeg(60 + i * 10, 50), $"session post {i}")).ToList();
        var answers = new List<Contracts.V1.ProtectResponse>();
        await foreach (var r in client.ProtectSessionAsync("csharp", posts)) answers.Add(r);
        Assert.Equal(["s0", "s1", "s2"], answers.Select(a => a.PostId).Order());
        Assert.All(answers, a => Assert.StartsWith(a.Trigger + " session post", a.ProtectedCaption));
    }

    static async Task<(int Code, string Output)> LoadTester(params string[] args)
    {
        // The tool as built in its own project's folder, with its own dependencies (not the test's).
        var output = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd('/'));   // …/tests/X/bin/<configuration>/<framework>
        var root = output.Parent!.Parent!.Parent!.Parent!.Parent!.FullName;
        var tool = Path.Combine(root, "client-samples", "csharp", "Unlearnable.LoadTest", "bin", output.Parent!.Name, output.Name, "unlearnable-loadtest.dll");
        var start = new System.Diagnostics.ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in args.Prepend(tool)) start.ArgumentList.Add(arg);
        using var process = System.Diagnostics.Process.Start(start)!;
        var printed = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        await process.WaitForExitAsync(timeout.Token);
        return (process.ExitCode, await printed + await error);
    }

    [Fact]
    public async Task TheLoadTesterReportsThroughputLatencyAndBatchSizes()
    {
        var json = Path.Combine(Server.Folder, "load.json");
        var (code, output) = await LoadTester("--address", $"http://127.0.0.1:{Server.GrpcPort}", "--api-key", SidecarServer.ApiKey, "--users", "3", "--posts", "2", "--image", "96", "--priority", "Bulk",
            "--server-pid", $"{Environment.ProcessId}", "--memory-window", "5", "--json", json);
        Assert.True(code == 0, output);
        Assert.Contains("3 users: 6 posts", output);
        var report = System.Text.Json.JsonSerializer.Deserialize<List<LoadReport>>(await File.ReadAllTextAsync(json))!.Single();
        Assert.Equal(6, report.Completed);
        Assert.Empty(report.ErrorsByStatus);
        Assert.True(report.PostsPerSecond > 0);
        Assert.True(report.P50Ms <= report.P95Ms && report.P95Ms <= report.P99Ms);
        Assert.InRange(report.MeanBatchSize, 1, 3);
        Assert.True(report.P50OptimiseMs > 0 && report.P50OptimiseMs < report.P50Ms, $"optimise p50 {report.P50OptimiseMs} ms, latency p50 {report.P50Ms} ms");
        Assert.True(report.LatencyOverOptimise > 1);
        Assert.NotEmpty(report.ServerRssMiBByWindow!);   // the in-process server is this process
        Assert.All(report.ServerRssMiBByWindow!, mib => Assert.InRange(mib, 50, 64_000));
        Assert.Contains("server RSS by window", output);
        await Assert.ThrowsAsync<ArgumentException>(() => LoadRun.RunAsync(new LoadSettings("http://10.1.2.3:5051", null, 1, 1, TimeSpan.FromSeconds(1), 32)));
    }

    [Theory]
    [InlineData("--posts x", "'x'")]
    [InlineData("--users 1,x", "comma-separated whole numbers")]
    [InlineData("--users 0", "--users values must each be in 1..1024")]
    [InlineData("--flood 4,2", "--flood takes 3 numbers")]
    [InlineData("--image 5", "--image must be in 16..12000")]
    [InlineData("--address http://10.1.2.3:5051", "not a loopback address")]
    [InlineData("--adress http://127.0.0.1:1", "Unrecognized command or argument '--adress'")]
    [InlineData("--priority urgent", "urgent")]
    [InlineData("--memory-window 1", "--memory-window must be in 5..86400 seconds")]
    public async Task TheLoadTesterRefusesBadArgumentsBeforeSendingAnything(string args, string problem)
    {
        var (code, output) = await LoadTester(args.Split(' '));
        Assert.Equal(2, code);
        Assert.Contains(problem, output);
    }

    [Fact]
    public async Task TheLoadTestersHelpDescribesItWithoutLoadingAnything()
    {
        var (code, output) = await LoadTester("--help");
        Assert.Equal(0, code);
        Assert.Contains("--users", output);
        Assert.Contains("--flood", output);
        Assert.DoesNotContain("posts/s", output);
    }
}
