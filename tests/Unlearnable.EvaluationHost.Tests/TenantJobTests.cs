using Grpc.Core;
using Grpc.Core.Interceptors;
using Microsoft.Data.Sqlite;
using Unlearnable.Contracts.V1;
using Unlearnable.Tests;

namespace Unlearnable.EvaluationHost.Tests;

/// <summary>Jobs are their tenant's: another tenant's key finds no such job, whatever it asks, and lists none of them.</summary>
public class TenantJobTests
{
    const string AcmeKey = "acme-eval-key-01", GlobexKey = "globex-eval-key-02";
    const string Spec = """
        { "name": "acme's study", "seed": 1, "preset": "tiny",
          "data": { "kind": "synthetic-scenes", "images": 24, "testImages": 8 },
          "protection": { "source": "none" },
          "attack": { "mode": "from-scratch", "epochs": 1, "learningRate": 1e-3, "batchSize": 8, "warmupSteps": 1 } }
        """;

    static readonly Dictionary<string, string?> Tenants = new()
    {
        ["Evaluation:Auth:Tenants:acme:0"] = AcmeKey, ["Evaluation:Auth:Tenants:globex:0"] = GlobexKey,
    };

    static EvaluationService.EvaluationServiceClient As(EvaluationHostServer host, string key) =>
        new(host.Channel.Intercept(headers =>
        {
            headers.Add("x-api-key", key);
            return headers;
        }));

    static async Task<StatusCode> Status(Func<Task> call) => (await Assert.ThrowsAsync<RpcException>(call)).StatusCode;

    [Fact]
    public async Task AnotherTenantsJobIsNotFoundWhateverIsAsked()
    {
        await using var host = await EvaluationHostServer.StartAsync(overrides: Tenants);
        var (acme, globex) = (As(host, AcmeKey), As(host, GlobexKey));
        var job = await acme.StartJobAsync(new StartJobRequest { SpecJson = Spec });

        string id = job.JobId;
        Assert.Equal(StatusCode.NotFound, await Status(async () => await globex.GetJobAsync(new GetJobRequest { JobId = id })));
        Assert.Equal(StatusCode.NotFound, await Status(async () => await globex.CancelJobAsync(new CancelJobRequest { JobId = id })));
        Assert.Equal(StatusCode.NotFound, await Status(async () => await globex.DeleteJobAsync(new DeleteJobRequest { JobId = id })));
        Assert.Equal(StatusCode.NotFound, await Status(async () => await globex.GetReportAsync(new GetReportRequest { JobId = id })));
        Assert.Equal(StatusCode.NotFound, await Status(async () =>
        {
            using var watch = globex.WatchJob(new WatchJobRequest { JobId = id });
            await watch.ResponseStream.MoveNext();
        }));
        Assert.Empty((await globex.ListJobsAsync(new ListJobsRequest())).Jobs);

        Assert.Equal(id, (await acme.GetJobAsync(new GetJobRequest { JobId = id })).JobId);
        Assert.Equal([id], (await acme.ListJobsAsync(new ListJobsRequest())).Jobs.Select(j => j.JobId));
        var cancelled = await acme.CancelJobAsync(new CancelJobRequest { JobId = id });   // still acme's to stop
        Assert.Equal(id, cancelled.JobId);
    }

    [Fact]
    public async Task JobsFromBeforeTenantsGoToTheLegacyTenantAndWithoutOneTheHostRefusesToStart()
    {
        var data = TestFolders.New();
        Directory.CreateDirectory(data);
        // The queue as an older host left it: no tenant column.
        using (var db = new SqliteConnection($"Data Source={Path.Combine(data, "jobs.db")};Pooling=False"))
        {
            db.Open();
            using var command = db.CreateCommand();
            long now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();   // ended just now: the retention sweep keeps it
            command.CommandText = $$"""
                CREATE TABLE jobs (id TEXT PRIMARY KEY, name TEXT NOT NULL, spec TEXT NOT NULL, state INTEGER NOT NULL, error TEXT NOT NULL DEFAULT '',
                  created_ms BIGINT NOT NULL, started_ms BIGINT NOT NULL DEFAULT 0, finished_ms BIGINT NOT NULL DEFAULT 0,
                  attempts INTEGER NOT NULL DEFAULT 0, last_event BLOB, seq BIGINT NOT NULL,
                  owner TEXT, lease_until_ms BIGINT NOT NULL DEFAULT 0, cancel_requested INTEGER NOT NULL DEFAULT 0);
                INSERT INTO jobs (id, name, spec, state, created_ms, finished_ms, seq) VALUES ('0ld0ld0ld0ld0ld0', 'old study', '{ "name": "old study" }', 5, {{now}}, {{now}}, 1);
                """;
            command.ExecuteNonQuery();
        }
        var refused = await Assert.ThrowsAsync<InvalidOperationException>(() => EvaluationHostServer.StartAsync(data, Tenants));
        Assert.Contains("Evaluation:Auth:LegacyTenant", refused.Message);

        await using var host = await EvaluationHostServer.StartAsync(data, new Dictionary<string, string?>(Tenants) { ["Evaluation:Auth:LegacyTenant"] = "globex" });
        Assert.Equal("old study", (await As(host, GlobexKey).GetJobAsync(new GetJobRequest { JobId = "0ld0ld0ld0ld0ld0" })).Name);
        Assert.Equal(StatusCode.NotFound, await Status(async () => await As(host, AcmeKey).GetJobAsync(new GetJobRequest { JobId = "0ld0ld0ld0ld0ld0" })));
    }
}
