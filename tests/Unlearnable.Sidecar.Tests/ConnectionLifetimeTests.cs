using Google.Protobuf;
using Microsoft.Extensions.DependencyInjection;
using Unlearnable.Contracts.V1;
using Unlearnable.Sidecar.Admission;

namespace Unlearnable.Sidecar.Tests;

/// <summary>Connections are asked to go (GOAWAY) at their maximum age and when the server drains; calls in flight finish first.</summary>
public class ConnectionLifetimeTests
{
    static ProtectRequest Post(string post) => new()
    {
        UserId = "nia", PostId = post, Image = ByteString.CopyFrom(TestImages.Jpeg(64, 64)), Caption = $"post {post} on the hill",
    };

    [Fact]
    public async Task AConnectionPastItsAgeIsAskedToGoAfterItsCallsFinishAndTheClientReconnects()
    {
        await using var server = await SidecarServer.StartAsync(new Dictionary<string, string?> { ["Sidecar:Limits:MaxConnectionAge"] = "00:00:01" });
        var connections = server.Services.GetRequiredService<ConnectionLifetimes>();
        Task<ProtectResponse> inFlight;
        using (await CodecSlots.HoldAllAsync(server))   // a post stays in flight past the connection's age
        {
            inFlight = server.Client.ProtectAsync(Post("p1"), server.Auth).ResponseAsync;
            await Poll.Until(() => connections.Count == 1, TimeSpan.FromSeconds(10));
            await Task.Delay(2500);
            Assert.Equal(1, connections.Count);   // past its age, but its call is still running: GOAWAY lets it finish
        }
        Assert.False(string.IsNullOrEmpty((await inFlight).ProtectedCaption));
        await Poll.Until(() => connections.Count == 0, TimeSpan.FromSeconds(10));   // then the connection goes
        var next = await server.Client.ProtectAsync(Post("p2"), server.Auth);   // the same channel opens a new one
        Assert.False(string.IsNullOrEmpty(next.ProtectedCaption));
    }

    [Fact]
    public async Task DrainingAsksEveryConnectionToGoAtOnce()
    {
        await using var server = await SidecarServer.StartAsync();   // the default age: minutes
        var connections = server.Services.GetRequiredService<ConnectionLifetimes>();
        await server.Client.ProtectAsync(Post("d1"), server.Auth);
        Assert.Equal(1, connections.Count);
        Assert.Equal(1, connections.CloseAll());   // what draining does at SIGTERM
        await Poll.Until(() => connections.Count == 0, TimeSpan.FromSeconds(10));
    }
}
