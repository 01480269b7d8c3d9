using Grpc.Net.Client.Balancer;
using Microsoft.Extensions.DependencyInjection;
using Unlearnable.ClientSample;
using Unlearnable.Contracts.V1;
using Unlearnable.Tests;

namespace Unlearnable.Sidecar.Tests;

/// <summary>
/// The C# client sample against two sidecar processes, as against the addresses a headless Service resolves to: calls
/// are balanced over both, and a replica stopped with SIGTERM loses no post (GOAWAY, retried on the other replica,
/// each post protected once).
/// </summary>
[Trait("Kind", "Process")]
public class BalancedReplicaTests
{
    /// <summary>The sample's client over both replicas (what dns:/// gives it in a cluster, here a static list).</summary>
    static SidecarClient Client(params SidecarProcess[] replicas)
    {
        var services = new ServiceCollection();
        services.AddSingleton<ResolverFactory>(new StaticResolverFactory(_ => replicas.Select(r => new BalancerAddress("127.0.0.1", r.GrpcPort)).ToList()));
        return new SidecarClient("static:///sidecars", SidecarServer.ApiKey, services: services.BuildServiceProvider());
    }

    static async Task<double> PostsServed(SidecarProcess replica)
    {
        using var http = new HttpClient();
        var metrics = await http.GetStringAsync($"http://127.0.0.1:{replica.HttpPort}/metrics");
        var line = metrics.Split('\n').FirstOrDefault(l => l.StartsWith("unlearnable_posts_total{status=\"OK\"}", StringComparison.Ordinal));
        return line is null ? 0 : double.Parse(line.Split(' ')[^1], System.Globalization.CultureInfo.InvariantCulture);
    }

    static async Task<List<SidecarProcess>> StartTwo(Dictionary<string, string>? settings = null)
    {
        var root = TestFolders.New();
        var starting = new[] { "a", "b" }.Select(name => SidecarProcess.StartAsync(Path.Combine(root, name), settings)).ToArray();
        return [.. await Task.WhenAll(starting)];
    }

    [Fact]
    public async Task RoundRobinSpreadsTheCallsOfOneClientOverBothReplicas()
    {
        var replicas = await StartTwo();
        await using var a = replicas[0];
        await using var b = replicas[1];
        using var client = Client(a, b);
        var image = TestImages.Jpeg(96, 72);
        // One client, one channel, 24 posts four at a time: with a ClusterIP Service they would all go to one replica.
        using var gate = new SemaphoreSlim(4);
        await Task.WhenAll(Enumerable.Range(0, 24).Select(async i =>
        {
            await gate.WaitAsync();
            try { Assert.False(string.IsNullOrEmpty((await client.ProtectBeforePublishAsync($"user{i % 6}", $"p{i}", image, "a walk by the river")).ProtectedCaption)); }
            finally { gate.Release(); }
        }));
        double served = await PostsServed(a), other = await PostsServed(b);
        Assert.Equal(24, served + other);
        Assert.True(Math.Min(served, other) >= 0.3 * 24, $"replica a served {served} posts, b {other}");
    }

    [SkippableFact]
    public async Task AReplicaStoppedWithSigtermLosesNoPostAndProtectsNoneTwice()
    {
        Skip.If(PostgresServer.Unavailable is not null, PostgresServer.Unavailable);
        var replicas = await StartTwo(new Dictionary<string, string>
        {
            ["Sidecar__Profiles__Store__Provider"] = "PostgreSql", ["Sidecar__Profiles__Store__ConnectionString"] = PostgresServer.NewDatabase(),
            ["Sidecar__Shutdown__GracePeriod"] = "00:00:20",
        });
        await using var a = replicas[0];
        await using var b = replicas[1];
        using var client = Client(a, b);
        // Photo-sized posts: over gRPC's default retry buffer (1 MB a call), which would leave them unretried.
        var image = TestImages.GrainyJpeg(1600, 1200, seed: 3);
        Assert.True(image.Length > 1 << 20, $"{image.Length} bytes");
        const int posts = 30;
        var answers = new ProtectResponse?[posts];
        int answered = 0;
        using var gate = new SemaphoreSlim(3);
        var sending = Task.WhenAll(Enumerable.Range(0, posts).Select(async i =>
        {
            await gate.WaitAsync();
            try
            {
                answers[i] = await client.ProtectBeforePublishAsync("rolling", $"r{i}", image, $"post {i} of a rolling restart");
                Interlocked.Increment(ref answered);
            }
            finally { gate.Release(); }
        }));
        await Poll.Until(() => Volatile.Read(ref answered) >= 6, TimeSpan.FromMinutes(2));
        a.Terminate();   // as Kubernetes stops a pod during a rolling restart
        await sending;   // every post answered: none failed
        Assert.Equal(0, await a.ExitedAsync(TimeSpan.FromSeconds(60)));

        Assert.All(answers, r => Assert.False(string.IsNullOrEmpty(r!.ProtectedCaption)));
        Assert.Equal(posts, answers.Select(r => r!.PostId).Distinct().Count());
        // Each post protected and counted once, retries replayed rather than protected again.
        var profile = await b.Client.GetUserProfileAsync(new GetUserProfileRequest { UserId = "rolling" }, b.Auth);
        Assert.Equal(posts, profile.PostsProtected);
        Assert.True(await PostsServed(b) > 0);
    }
}
