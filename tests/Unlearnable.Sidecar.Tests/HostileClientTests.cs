using Google.Protobuf;
using Grpc.Core;
using Microsoft.Extensions.DependencyInjection;
using Unlearnable.Contracts.V1;
using Unlearnable.Sidecar.Admission;

namespace Unlearnable.Sidecar.Tests;

/// <summary>Clients that try to get past admission or to grow what the server keeps, with made-up paths and methods.</summary>
[Collection("sidecar")]
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
