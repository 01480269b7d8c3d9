using System.Diagnostics;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;
using Unlearnable.Contracts.V1;
using Unlearnable.LoadTest;
using Unlearnable.Tests;

namespace Unlearnable.Sidecar.Tests;

/// <summary>
/// The sidecar as its own process under keyless floods — bodies, made-up methods and paths, health watchers that never
/// end, slow trickles — while a keyed client keeps protecting posts: every keyed post is protected, the process stays
/// within the memory its limits were checked against at start-up, and /metrics stays small.
/// </summary>
[Trait("Kind", "Process")]
public class HostileFloodTests
{
    const long MemoryBytes = 1536L << 20;

    /// <summary>Limits that add up to about 1.4 GiB, checked by the server against <see cref="MemoryBytes"/> at start-up.</summary>
    static readonly Dictionary<string, string> Limits = new()
    {
        ["Sidecar__Limits__MemoryBytes"] = MemoryBytes.ToString(), ["Sidecar__Limits__PostMemoryBytes"] = (256L << 20).ToString(),
        ["Sidecar__Limits__MaxImagePixels"] = "4000000", ["Sidecar__Limits__MaxConnections"] = "16", ["Sidecar__Limits__MaxStreamsPerConnection"] = "8",
    };

    [Fact]
    public async Task KeylessFloodsNeitherStopAKeyedClientNorGrowTheServer()
    {
        await using var sidecar = await SidecarProcess.StartAsync(TestFolders.New(), Limits);
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        var refusals = new System.Collections.Concurrent.ConcurrentDictionary<string, int>();
        void Count(string what) => refusals.AddOrUpdate(what, 1, (_, n) => n + 1);

        // Keyless 1 MB bodies, as fast as they are answered, on one connection.
        using var bodies = GrpcChannel.ForAddress(sidecar.Address, new GrpcChannelOptions { MaxSendMessageSize = 8 << 20 });
        var big = new ProtectRequest { UserId = "mallory", PostId = "big", Caption = "x", Image = ByteString.CopyFrom(new byte[1 << 20]) };
        async Task KeylessBodies()
        {
            var client = new ProtectionService.ProtectionServiceClient(bodies);
            while (!stop.IsCancellationRequested)
            {
                // UNAUTHENTICATED from the headers; Kestrel may also reset a connection whose streams it keeps resetting
                // (ENHANCE_YOUR_CALM: bodies sent on after their answer). Either way nothing of them is kept.
                try { await client.ProtectAsync(big, new Metadata { { "x-api-key", "made-up" } }, cancellationToken: stop.Token); }
                catch (RpcException e) when (!stop.IsCancellationRequested) { Count($"bodies {e.StatusCode}"); }
                catch (RpcException) { }
            }
        }

        // Made-up gRPC methods and paths, and made-up HTTP methods on the metrics listener.
        using var http2 = new HttpClient { DefaultRequestVersion = System.Net.HttpVersion.Version20, DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact };
        using var http1 = new HttpClient();
        async Task MadeUpMethods()
        {
            for (int i = 0; !stop.IsCancellationRequested && i < 3_000; i++)
            {
                try
                {
                    using var grpc = new HttpRequestMessage(HttpMethod.Post, $"{sidecar.Address}/evil.v{i}.Service/Method{i}") { Content = new ByteArrayContent(new byte[5]) };
                    grpc.Content.Headers.ContentType = new("application/grpc");
                    using var _ = await http2.SendAsync(grpc, stop.Token);
                    using var odd = new HttpRequestMessage(new HttpMethod($"MADEUP{i}"), $"http://127.0.0.1:{sidecar.HttpPort}/made-up-{i}");
                    using var __ = await http1.SendAsync(odd, stop.Token);
                    Count("methods");
                }
                catch (OperationCanceledException) { }
                catch (HttpRequestException) { Count("methods: connection closed"); }   // Kestrel may close a connection after a bad request
            }
        }

        // Health watchers that never end, on their own connection.
        using var watchers = GrpcChannel.ForAddress(sidecar.Address);
        async Task Watch()
        {
            try
            {
                using var watch = new Grpc.Health.V1.Health.HealthClient(watchers).Watch(new Grpc.Health.V1.HealthCheckRequest(), cancellationToken: stop.Token);
                while (await watch.ResponseStream.MoveNext(stop.Token)) Count("watch updates");
            }
            catch (RpcException) when (stop.IsCancellationRequested) { }
            catch (OperationCanceledException) { }
        }

        // Slow-loris bodies with a made-up key: refused from their headers.
        async Task Trickle()
        {
            while (!stop.IsCancellationRequested)
            {
                try
                {
                    using var request = new HttpRequestMessage(HttpMethod.Post, $"{sidecar.Address}/unlearnable.v1.ProtectionService/Protect") { Content = new TrickledBody(stop.Token) };
                    request.Headers.Add("x-api-key", "made-up");
                    request.Headers.TE.ParseAdd("trailers");
                    using var answer = await http2.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, stop.Token);
                    if (answer.Headers.TryGetValues("grpc-status", out var status) && status.Single() == ((int)StatusCode.Unauthenticated).ToString()) Count("trickles");
                }
                catch (OperationCanceledException) { }
                catch (HttpRequestException) { Count("trickles: reset"); }   // refused while it was still sending
            }
        }

        var flood = new List<Task> { KeylessBodies(), KeylessBodies(), MadeUpMethods(), Trickle(), Trickle() };
        flood.AddRange(Enumerable.Range(0, 6).Select(_ => Watch()));
        await Task.Delay(1000);   // the flood is under way

        // Meanwhile a keyed client protects its posts, each of them.
        var keyed = new List<ProtectResponse>();
        var clock = Stopwatch.StartNew();
        for (int i = 0; i < 8; i++)
            keyed.Add(await sidecar.Client.ProtectAsync(new ProtectRequest
            {
                UserId = "alice", PostId = $"a{i}", Image = ByteString.CopyFrom(TestImages.Jpeg(640, 480)), Caption = $"day {i} by the sea",
            }, sidecar.Auth, deadline: DateTime.UtcNow.AddMinutes(2)));
        var keyedTime = clock.Elapsed;
        await Task.WhenAll(flood);

        Assert.All(keyed, r => Assert.False(string.IsNullOrEmpty(r.ProtectedCaption)));
        Assert.True(refusals.Where(r => r.Key.StartsWith("bodies", StringComparison.Ordinal)).Sum(r => r.Value) > 10 && refusals.GetValueOrDefault("methods") > 100 && refusals.Where(r => r.Key.StartsWith("trickles", StringComparison.Ordinal)).Sum(r => r.Value) > 2,
            $"the flood did not run: {string.Join(", ", refusals)}");
        double peak = ServerMemory.Read(sidecar.Pid, "VmHWM") ?? 0;
        Assert.InRange(peak, 1, MemoryBytes / (1 << 20));
        var metrics = await http1.GetStringAsync($"http://127.0.0.1:{sidecar.HttpPort}/metrics");
        Assert.True(metrics.Length < 100_000, $"/metrics is {metrics.Length:N0} bytes after the flood");
        Console.WriteLine($"hostile flood: {string.Join(", ", refusals.Select(r => $"{r.Key} {r.Value}"))}; 8 keyed posts in {keyedTime.TotalSeconds:F1} s; " +
            $"server peak {peak:F0} MiB of {MemoryBytes >> 20}; /metrics {metrics.Length:N0} bytes");
    }
}
