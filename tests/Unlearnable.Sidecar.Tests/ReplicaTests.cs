using Google.Protobuf;
using Grpc.Core;
using Unlearnable.Contracts.V1;
using Unlearnable.Tests;

namespace Unlearnable.Sidecar.Tests;

/// <summary>
/// Two sidecar processes behind one load balancer, sharing one real PostgreSQL server: a user,
/// their posts and their deletion mean the same on both, whichever replica a call lands on.
/// </summary>
[Trait("Kind", "Process")]
public class ReplicaTests
{
    static ProtectRequest Post(string user, string post, TriggerPolicy policy = TriggerPolicy.Sticky) => new()
    {
        UserId = user, PostId = post, Image = ByteString.CopyFrom(TestImages.Jpeg(96, 80)), Caption = $"post {post} by the river",
        Options = new ProtectOptions { TriggerPolicy = policy },
    };

    [SkippableFact]
    public async Task AStickyUsersFirstPostHoldsNoServerLockWhileItWaitsToBeDecoded()
    {
        Skip.If(PostgresServer.Unavailable is not null, PostgresServer.Unavailable);
        var database = PostgresServer.NewDatabase();
        await using var server = await SidecarServer.StartAsync(new Dictionary<string, string?>
        {
            ["Sidecar:Profiles:Store:Provider"] = "PostgreSql", ["Sidecar:Profiles:Store:ConnectionString"] = database,
        });
        async Task<long> AdvisoryLocks()
        {
            await using var db = new Npgsql.NpgsqlConnection(database);
            await db.OpenAsync();
            await using var count = new Npgsql.NpgsqlCommand("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'", db);
            return (long)(await count.ExecuteScalarAsync())!;
        }

        Task<ProtectResponse> first;
        using (await CodecSlots.HoldAllAsync(server))   // the post cannot be decoded yet
        {
            first = server.Client.ProtectAsync(Post("wren", "p1"), server.Auth).ResponseAsync;
            await Task.Delay(1500);
            Assert.False(first.IsCompleted);
            Assert.Equal(0, await AdvisoryLocks());   // before, the user's lock (and a pooled connection) was held from here on
        }
        var decided = await first;
        Assert.Equal(0, await AdvisoryLocks());
        var second = await server.Client.ProtectAsync(Post("wren", "p2"), server.Auth);
        Assert.Equal(decided.Trigger, second.Trigger);   // the next post reads the trigger the first decided
        Assert.Equal(decided.Trigger, (await server.Client.GetUserProfileAsync(new GetUserProfileRequest { UserId = "wren" }, server.Auth)).StickyTrigger);
    }

    [SkippableFact]
    public async Task TwoReplicasOnOnePostgreSqlShareTriggersReplaysAndDeletions()
    {
        Skip.If(PostgresServer.Unavailable is not null, PostgresServer.Unavailable);
        var database = PostgresServer.NewDatabase();
        var root = TestFolders.New();
        var shared = new Dictionary<string, string>
        {
            ["Sidecar__Profiles__Store__Provider"] = "PostgreSql",
            ["Sidecar__Profiles__Store__ConnectionString"] = database,
            ["Sidecar__Batching__MaxBatchSize"] = "2",
        };
        var starting = new[] { "a", "b" }.Select(name => SidecarProcess.StartAsync(Path.Combine(root, name), shared)).ToArray();
        await using var a = await starting[0];
        await using var b = await starting[1];

        // A sticky user's first posts land on both replicas at once: one trigger is decided, on both.
        var firsts = await Task.WhenAll(
            a.Client.ProtectAsync(Post("ola", "p1"), a.Auth).ResponseAsync,
            b.Client.ProtectAsync(Post("ola", "p2"), b.Auth).ResponseAsync,
            a.Client.ProtectAsync(Post("ola", "p3"), a.Auth).ResponseAsync);
        Assert.NotEqual("", firsts[0].Trigger);
        Assert.Single(firsts.Select(f => f.Trigger).Distinct());
        var later = await b.Client.ProtectAsync(Post("ola", "p4"), b.Auth);
        Assert.Equal(firsts[0].Trigger, later.Trigger);
        var profile = await a.Client.GetUserProfileAsync(new GetUserProfileRequest { UserId = "ola" }, a.Auth);
        Assert.Equal(firsts[0].Trigger, profile.StickyTrigger);
        Assert.Equal(4, profile.PostsProtected);

        // A post retried on the other replica is the published answer, byte for byte, and is not counted again.
        var retry = await b.Client.ProtectAsync(Post("ola", "p1"), b.Auth);
        Assert.True(retry.Replayed);
        Assert.Equal(firsts[0].Image, retry.Image);
        Assert.Equal(firsts[0].ProtectedCaption, retry.ProtectedCaption);
        var changed = Post("ola", "p1");
        changed.Caption = "another caption under the same id";
        Assert.Equal(StatusCode.AlreadyExists, (await Assert.ThrowsAsync<RpcException>(async () => await a.Client.ProtectAsync(changed, a.Auth))).StatusCode);
        Assert.Equal(4, (await b.Client.GetUserProfileAsync(new GetUserProfileRequest { UserId = "ola" }, b.Auth)).PostsProtected);

        // Deleting on one replica deletes for both: no profile, and the old post id is protected afresh.
        var deleted = await a.Client.DeleteUserProfileAsync(new DeleteUserProfileRequest { UserId = "ola" }, a.Auth);
        Assert.True(deleted.Deleted);
        Assert.Equal(StatusCode.NotFound, (await Assert.ThrowsAsync<RpcException>(async () =>
            await b.Client.GetUserProfileAsync(new GetUserProfileRequest { UserId = "ola" }, b.Auth))).StatusCode);
        var afresh = await b.Client.ProtectAsync(Post("ola", "p1"), b.Auth);
        Assert.False(afresh.Replayed);
        Assert.Equal(1, (await a.Client.GetUserProfileAsync(new GetUserProfileRequest { UserId = "ola" }, a.Auth)).PostsProtected);
    }
}
