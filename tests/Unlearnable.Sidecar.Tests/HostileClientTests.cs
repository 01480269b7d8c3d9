using Google.Protobuf;
using Grpc.Core;
using Microsoft.Extensions.DependencyInjection;
using Unlearnable.Contracts.V1;
using Unlearnable.Sidecar.Admission;

namespace Unlearnable.Sidecar.Tests;

/// <summary>Clients that try to get past admission or to grow what the server keeps, with made-up paths and methods.</summary>
[Collection("sidecar")]
[Trait("Kind", "Process")]
public class HostileClientTests
{
    [Fact]
    public async Task APathThatRoutesToProtectAnotherWayTakesAnAdmissionSlotLikeProtect()
    {
        await using var server = await SidecarServer.StartAsync(new Dictionary<string, string?> { ["Sidecar:Limits:MaxPostsInFlight"] = "1" });
        var admission = server.Services.GetRequiredService<AdmissionControl>();
        using var release = await CodecSlots.HoldAllAsync(server);   // the admitted post waits to be decoded, holding the one slot
        var held = server.Client.ProtectAsync(Post("p1"), server.Auth).ResponseAsync;
        await Poll.Until(() => admission.InFlight == 1, TimeSpan.FromSeconds(10));

        // Routing maps ".../Protect/" to Protect; admission must see it as Protect too, and refuse it before reading it.
        var trailingSlash = new Method<ProtectRequest, ProtectResponse>(MethodType.Unary, ProtectionService.Descriptor.FullName, "Protect/",
            Marshallers.Create(r => r.ToByteArray(), ProtectRequest.Parser.ParseFrom), Marshallers.Create(r => r.ToByteArray(), ProtectResponse.Parser.ParseFrom));
        var call = server.Channel.CreateCallInvoker().AsyncUnaryCall(trailingSlash, null, new CallOptions(server.Auth, DateTime.UtcNow.AddSeconds(20)), Post("p2"));
        var refused = await Assert.ThrowsAsync<RpcException>(() => call.ResponseAsync);
        Assert.Equal(StatusCode.ResourceExhausted, refused.StatusCode);
        Assert.Contains("MaxPostsInFlight", refused.Status.Detail);

        release.Dispose();
        Assert.False(string.IsNullOrEmpty((await held).ProtectedCaption));
    }

    [Fact]
    public async Task AKeylessCallIsRefusedFromItsHeadersAndHoldsNoSlotWhileItsBodyTrickles()
    {
        await using var server = await SidecarServer.StartAsync(new Dictionary<string, string?> { ["Sidecar:Limits:MaxPostsInFlight"] = "1" });
        var admission = server.Services.GetRequiredService<AdmissionControl>();
        using var http = new HttpClient();
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        // A Protect call with a made-up key whose 1 MB body arrives a byte at a time, as a slow-loris client sends it.
        var request = new HttpRequestMessage(HttpMethod.Post, $"http://127.0.0.1:{server.GrpcPort}{AdmissionMiddleware.ProtectPath}")
        {
            Version = System.Net.HttpVersion.Version20, VersionPolicy = HttpVersionPolicy.RequestVersionExact, Content = new TrickledBody(stop.Token),
        };
        request.Headers.Add("x-api-key", "made-up");
        request.Headers.TE.ParseAdd("trailers");
        var keyless = http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, stop.Token);

        await Task.Delay(1000);
        Assert.Equal(0, admission.InFlight);
        var keyed = await server.Client.ProtectAsync(Post("keyed"), server.Auth);   // the one slot is free for a keyed client
        Assert.False(string.IsNullOrEmpty(keyed.ProtectedCaption));
        using var refused = await keyless;
        Assert.Equal(((int)StatusCode.Unauthenticated).ToString(), refused.Headers.GetValues("grpc-status").Single());
        Assert.Contains("x-api-key", Uri.UnescapeDataString(refused.Headers.GetValues("grpc-message").Single()));
        await stop.CancelAsync();
    }

    [Fact]
    public async Task AKeyedPostWhoseBodyTricklesLosesItsSlotAtTheBodyDeadline()
    {
        await using var server = await SidecarServer.StartAsync(new Dictionary<string, string?>
        {
            ["Sidecar:Limits:MaxPostsInFlight"] = "1", ["Sidecar:Limits:BodyReadTimeout"] = "00:00:02",
        });
        var admission = server.Services.GetRequiredService<AdmissionControl>();
        using var http = new HttpClient();
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var request = new HttpRequestMessage(HttpMethod.Post, $"http://127.0.0.1:{server.GrpcPort}{AdmissionMiddleware.ProtectPath}")
        {
            Version = System.Net.HttpVersion.Version20, VersionPolicy = HttpVersionPolicy.RequestVersionExact, Content = new TrickledBody(stop.Token),
        };
        request.Headers.Add("x-api-key", SidecarServer.ApiKey);   // a real key: admitted, then too slow
        request.Headers.TE.ParseAdd("trailers");
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var slow = http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, stop.Token);
        await Task.Delay(500);
        Assert.Equal(1, admission.InFlight);   // it holds the only slot while its body trickles…

        using var refused = await slow;   // …until the deadline
        Assert.InRange(clock.Elapsed.TotalSeconds, 1.5, 20);
        Assert.Equal(((int)StatusCode.DeadlineExceeded).ToString(), refused.Headers.GetValues("grpc-status").Single());
        Assert.Contains("Sidecar:Limits:BodyReadTimeout", Uri.UnescapeDataString(refused.Headers.GetValues("grpc-message").Single()));
        await stop.CancelAsync();
        var keyed = await server.Client.ProtectAsync(Post("after"), server.Auth);   // the slot is free again
        Assert.False(string.IsNullOrEmpty(keyed.ProtectedCaption));
        Assert.Equal(0, admission.InFlight);
    }

    [Fact]
    public async Task ABodyThePostMemoryCannotTakeIsRefusedFromItsFrameHeaderBeforeItIsRead()
    {
        await using var server = await SidecarServer.StartAsync(new Dictionary<string, string?> { ["Sidecar:Limits:PostMemoryBytes"] = "1500000" });
        var memory = server.Services.GetRequiredService<PostMemory>();
        Task<ProtectResponse> held;
        using (await CodecSlots.HoldAllAsync(server))   // an admitted post waits to be decoded, its body counted
        {
            held = server.Client.ProtectAsync(Post("p1"), server.Auth).ResponseAsync;
            await Poll.Until(() => memory.HeldBytes > 0, TimeSpan.FromSeconds(10));

            // A keyed post whose frame declares 1 MB (2 MB with gRPC's copy) and then trickles: refused from the header, not after 1 MB.
            using var http = new HttpClient();
            using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            var request = new HttpRequestMessage(HttpMethod.Post, $"http://127.0.0.1:{server.GrpcPort}{AdmissionMiddleware.ProtectPath}")
            {
                Version = System.Net.HttpVersion.Version20, VersionPolicy = HttpVersionPolicy.RequestVersionExact, Content = new TrickledBody(stop.Token),
            };
            request.Headers.Add("x-api-key", SidecarServer.ApiKey);
            request.Headers.TE.ParseAdd("trailers");
            var clock = System.Diagnostics.Stopwatch.StartNew();
            using var refused = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, stop.Token);
            Assert.InRange(clock.Elapsed.TotalSeconds, 0, 10);   // a byte every 100 ms: the whole body would take a day
            Assert.Equal(((int)StatusCode.ResourceExhausted).ToString(), refused.Headers.GetValues("grpc-status").Single());
            Assert.Contains("Sidecar:Limits:PostMemoryBytes", Uri.UnescapeDataString(refused.Headers.GetValues("grpc-message").Single()));
            await stop.CancelAsync();
        }
        Assert.False(string.IsNullOrEmpty((await held).ProtectedCaption));
        await Poll.Until(() => memory.HeldBytes == 0, TimeSpan.FromSeconds(10));   // body, image and answer all let go once written
    }

    [Fact]
    public async Task AFullGrpcListenerLeavesTheProbesAndScrapesTheirOwnConnections()
    {
        await using var server = await SidecarServer.StartAsync(new Dictionary<string, string?> { ["Sidecar:Limits:MaxConnections"] = "2" });
        // Two idle connections (never-ending health watchers would do the same) fill the gRPC listener.
        var idle = new List<System.Net.Sockets.TcpClient>();
        for (int i = 0; i < 2; i++)
        {
            var socket = new System.Net.Sockets.TcpClient();
            await socket.ConnectAsync("127.0.0.1", server.GrpcPort);
            // The HTTP/2 preface and an empty SETTINGS frame: a connection Kestrel keeps open, idle.
            byte[] hello = [.. "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"u8.ToArray(), 0, 0, 0, 4, 0, 0, 0, 0, 0];
            await socket.GetStream().WriteAsync(hello);
            idle.Add(socket);
        }
        await Task.Delay(300);
        // A third client is turned away: the server closes its connection…
        using var third = new System.Net.Sockets.TcpClient();
        var buffer = new byte[64];
        using (var wait = new CancellationTokenSource(TimeSpan.FromSeconds(10)))
        {
            try
            {
                await third.ConnectAsync("127.0.0.1", server.GrpcPort, wait.Token);
                Assert.Equal(0, await third.GetStream().ReadAsync(buffer, wait.Token));   // closed…
            }
            catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException) { }   // …or reset, even before the connect returned
        }
        // …while the probes and the scrapes, on their own listener, are still answered.
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        Assert.Contains("SERVING", await http.GetStringAsync($"http://127.0.0.1:{server.HttpPort}/healthz"));
        Assert.Contains("unlearnable_", await http.GetStringAsync($"http://127.0.0.1:{server.HttpPort}/metrics"));
        foreach (var socket in idle) socket.Dispose();
    }

    [Fact]
    public async Task KeylessServicesTakeOnlySmallRequests()
    {
        await using var server = await SidecarServer.StartAsync();
        var health = new Grpc.Health.V1.Health.HealthClient(server.Channel);
        var big = await Assert.ThrowsAsync<RpcException>(async () =>
            await health.CheckAsync(new Grpc.Health.V1.HealthCheckRequest { Service = new string('a', 1 << 20) }));
        Assert.Equal(StatusCode.ResourceExhausted, big.StatusCode);
        Assert.Equal(Grpc.Health.V1.HealthCheckResponse.Types.ServingStatus.Serving, (await health.CheckAsync(new Grpc.Health.V1.HealthCheckRequest())).Status);
    }

    [Fact]
    public async Task MadeUpHttpMethodsDoNotGrowTheMetrics()
    {
        await using var server = await SidecarServer.StartAsync();
        using var http = new HttpClient();
        for (int i = 0; i < 200; i++)
        {
            using var request = new HttpRequestMessage(new HttpMethod($"MADEUP{i}"), $"http://127.0.0.1:{server.HttpPort}/anything-{i}");
            using var _ = await http.SendAsync(request);
        }
        // Series labelled by a request's method may exist (the runtime's own, where an unknown method is "_OTHER"),
        // but no label may carry what a client chose, so the number of series stays bounded whatever clients send.
        var exposition = await http.GetStringAsync($"http://127.0.0.1:{server.HttpPort}/metrics");
        Assert.DoesNotContain("MADEUP", exposition);
        var methods = System.Text.RegularExpressions.Regex.Matches(exposition, "method=\"([^\"]*)\"").Select(m => m.Groups[1].Value).Distinct().ToList();
        Assert.All(methods, m => Assert.Contains(m, new[] { "GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "CONNECT", "TRACE", "_OTHER" }));
    }

    static ProtectRequest Post(string post) => new()
    {
        UserId = "mallory", PostId = post, Image = ByteString.CopyFrom(TestImages.Jpeg(64, 64)), Caption = $"post {post} at the lake",
    };
}
