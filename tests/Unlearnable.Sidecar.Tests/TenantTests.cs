using Google.Protobuf;
using Grpc.Core;
using Microsoft.Extensions.DependencyInjection;
using Unlearnable.Sidecar.Admission;
using Unlearnable.Contracts.V1;
using Unlearnable.Tests;

namespace Unlearnable.Sidecar.Tests;

/// <summary>
/// Two tenants on one sidecar, and on two replicas sharing PostgreSQL: the same user_id and post_id under two tenants
/// are two users and two posts. A tenant cannot see, replay or delete the other's; a tenant's second key (a rotation)
/// sees everything its first key stored.
/// </summary>
public class TenantTests
{
    const string AcmeKey = "acme-key-1-7d0e", AcmeRotatedKey = "acme-key-2-41aa", GlobexKey = "globex-key-c93f";

    /// <summary>Two named tenants; acme has two keys.</summary>
    static readonly Dictionary<string, string> Tenants = new()
    {
        ["Sidecar:Auth:Tenants:acme:0"] = AcmeKey, ["Sidecar:Auth:Tenants:acme:1"] = AcmeRotatedKey,
        ["Sidecar:Auth:Tenants:globex:0"] = GlobexKey,
    };

    static Metadata As(string key) => new() { { "x-api-key", key } };

    static ProtectRequest Post(string caption) => new()
    {
        UserId = "ola", PostId = "p1", Image = ByteString.CopyFrom(TestImages.Jpeg(96, 80)), Caption = caption,
        Options = new ProtectOptions { TriggerPolicy = TriggerPolicy.Sticky },
    };

    static async Task<StatusCode> Refused(Func<Task> call) => (await Assert.ThrowsAsync<RpcException>(call)).StatusCode;

    /// <summary>The scenario, with acme's first key on one server and everything else on <paramref name="second"/> (the same one or another replica).</summary>
    static async Task TenantsStayApart(ProtectionService.ProtectionServiceClient first, ProtectionService.ProtectionServiceClient second)
    {
        var acme = await first.ProtectAsync(Post("acme's photo by the river"), As(AcmeKey));
        Assert.False(acme.Replayed);

        // globex sees no "ola", cannot delete acme's, and its own "ola"/"p1" is a new post (not ALREADY_EXISTS for another caption).
        Assert.Equal(StatusCode.NotFound, await Refused(async () => await second.GetUserProfileAsync(new GetUserProfileRequest { UserId = "ola" }, As(GlobexKey))));
        var nothing = await second.DeleteUserProfileAsync(new DeleteUserProfileRequest { UserId = "ola" }, As(GlobexKey));
        Assert.False(nothing.Deleted);
        Assert.Equal(0, nothing.StoredResultsDeleted);
        var globex = await second.ProtectAsync(Post("globex's own caption"), As(GlobexKey));
        Assert.False(globex.Replayed);
        Assert.EndsWith("globex's own caption", globex.ProtectedCaption);

        // acme's rotated key is acme: it replays acme's answer byte for byte, and its profile counts one post.
        var replay = await second.ProtectAsync(Post("acme's photo by the river"), As(AcmeRotatedKey));
        Assert.True(replay.Replayed);
        Assert.Equal(acme.Image, replay.Image);
        Assert.Equal(acme.ProtectedCaption, replay.ProtectedCaption);
        var profile = await second.GetUserProfileAsync(new GetUserProfileRequest { UserId = "ola" }, As(AcmeRotatedKey));
        Assert.Equal(1, profile.PostsProtected);
        Assert.Equal(acme.Trigger, profile.StickyTrigger);   // globex's post decided no trigger for acme's user

        // globex deletes its own "ola": acme's stays, answers and all.
        var deleted = await second.DeleteUserProfileAsync(new DeleteUserProfileRequest { UserId = "ola" }, As(GlobexKey));
        Assert.True(deleted.Deleted);
        Assert.Equal(1, deleted.StoredResultsDeleted);
        Assert.Equal(1, (await first.GetUserProfileAsync(new GetUserProfileRequest { UserId = "ola" }, As(AcmeKey))).PostsProtected);
        Assert.True((await first.ProtectAsync(Post("acme's photo by the river"), As(AcmeKey))).Replayed);
        Assert.Equal(StatusCode.NotFound, await Refused(async () => await second.GetUserProfileAsync(new GetUserProfileRequest { UserId = "ola" }, As(GlobexKey))));
    }

    [Fact]
    public async Task TwoTenantsOnOneSidecarCannotSeeReplayOrDeleteEachOthersUsers()
    {
        await using var server = await SidecarServer.StartAsync(Tenants.ToDictionary(p => p.Key, p => (string?)p.Value));
        await TenantsStayApart(server.Client, server.Client);
    }

    [SkippableFact]
    [Trait("Kind", "Process")]
    public async Task TwoTenantsOnTwoReplicasOverPostgreSqlCannotSeeReplayOrDeleteEachOthersUsers()
    {
        Skip.If(PostgresServer.Unavailable is not null, PostgresServer.Unavailable);
        var root = TestFolders.New();
        var settings = Tenants.ToDictionary(p => p.Key.Replace(":", "__"), p => p.Value);
        settings["Sidecar__Profiles__Store__Provider"] = "PostgreSql";
        settings["Sidecar__Profiles__Store__ConnectionString"] = PostgresServer.NewDatabase();
        var starting = new[] { "a", "b" }.Select(name => SidecarProcess.StartAsync(Path.Combine(root, name), settings)).ToArray();
        await using var a = await starting[0];
        await using var b = await starting[1];
        await TenantsStayApart(a.Client, b.Client);
    }

    [Fact]
    public async Task ATenantsKeysShareOneInFlightShareAndAnotherTenantKeepsItsOwn()
    {
        var settings = Tenants.ToDictionary(p => p.Key, p => (string?)p.Value);
        settings["Sidecar:Limits:MaxPostsInFlightPerTenant"] = "1";
        await using var server = await SidecarServer.StartAsync(settings);
        var admission = server.Services.GetRequiredService<AdmissionControl>();
        Task<ProtectResponse> acme, globex;
        using (await CodecSlots.HoldAllAsync(server))   // admitted posts wait to be decoded, each holding its slot
        {
            acme = server.Client.ProtectAsync(Post("acme's first"), As(AcmeKey)).ResponseAsync;
            await Poll.Until(() => admission.InFlight == 1, TimeSpan.FromSeconds(10));
            var rotated = Post("acme's second");
            rotated.PostId = "p2";
            var refused = await Assert.ThrowsAsync<RpcException>(async () => await server.Client.ProtectAsync(rotated, As(AcmeRotatedKey)));
            Assert.Equal(StatusCode.ResourceExhausted, refused.StatusCode);   // the other key is the same tenant: its share is taken
            Assert.Contains("Sidecar:Limits:MaxPostsInFlightPerTenant", refused.Status.Detail);
            globex = server.Client.ProtectAsync(Post("globex's first"), As(GlobexKey)).ResponseAsync;
            await Poll.Until(() => admission.InFlight == 2, TimeSpan.FromSeconds(10));   // admitted beside acme's
        }
        Assert.False((await acme).Replayed);
        Assert.False((await globex).Replayed);
    }
}
