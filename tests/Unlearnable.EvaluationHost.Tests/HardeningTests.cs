using Google.Rpc;
using Grpc.Core;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Unlearnable.Contracts.V1;
using Unlearnable.Evaluation;
using Unlearnable.EvaluationHost.Jobs;

namespace Unlearnable.EvaluationHost.Tests;

/// <summary>The host as a hostile client meets it: keys, secrets, paths, sizes, crashing jobs, made-up ids, slow watchers.</summary>
[Trait("Kind", "Process")]
public class HardeningTests
{
    const string QuickJob = """
        { "name": "quick", "seed": 1, "preset": "tiny",
          "data": { "kind": "synthetic-scenes", "images": 24, "testImages": 8 },
          "protection": { "source": "none" },
          "attack": { "mode": "from-scratch", "epochs": 1, "learningRate": 1e-3, "batchSize": 8, "warmupSteps": 1 } }
        """;

    static async Task<(string Message, List<string> Fields)> Refusal(EvaluationHostServer host, string json)
    {
        var e = await Assert.ThrowsAsync<RpcException>(async () => await host.Client.StartJobAsync(new StartJobRequest { SpecJson = json }));
        Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
        return (e.Status.Detail, e.GetRpcStatus()?.GetDetail<BadRequest>()?.FieldViolations.Select(v => v.Field).ToList() ?? []);
    }

    static async Task<Job> WaitUntilEnded(EvaluationHostServer host, string jobId)
    {
        for (int i = 0; i < 600; i++)
        {
            var job = await host.Client.GetJobAsync(new GetJobRequest { JobId = jobId });
            if (job.State is JobState.Succeeded or JobState.Failed or JobState.Cancelled) return job;
            await Task.Delay(100);
        }
        throw new TimeoutException($"job {jobId} did not end");
    }

    [Fact]
    public async Task EveryCallNeedsAKeyAndAHostWithoutKeysOutsideDevelopmentDoesNotStart()
    {
        await using var host = await EvaluationHostServer.StartAsync();
        var calls = new Func<Task>[]
        {
            async () => await host.Anonymous.ListJobsAsync(new ListJobsRequest()),
            async () => await host.Anonymous.StartJobAsync(new StartJobRequest { SpecJson = QuickJob }),
            async () => await host.Anonymous.GetJobAsync(new GetJobRequest { JobId = "x" }),
            async () => { using var watch = host.Anonymous.WatchJob(new WatchJobRequest { JobId = "x" }); await watch.ResponseStream.MoveNext(); },
            async () => await host.Anonymous.ListJobsAsync(new ListJobsRequest(), new Metadata { { "x-api-key", "wrong" } }),
        };
        foreach (var call in calls) Assert.Equal(StatusCode.Unauthenticated, (await Assert.ThrowsAsync<RpcException>(call)).StatusCode);
        Assert.Empty((await host.Client.ListJobsAsync(new ListJobsRequest())).Jobs);   // nothing was queued

        var e = Assert.Throws<InvalidOperationException>(() => EvaluationHostApp.Build(["--environment", "Production"],
            b => b.Configuration.AddInMemoryCollection(new Dictionary<string, string?> { ["Evaluation:DataDirectory"] = host.DataDirectory })));
        Assert.Contains("Evaluation:Auth:ApiKeys", e.Message);
    }

    [Theory]
    [InlineData("Evaluation:Store:ConnectionString", "Host=db", "Evaluation:Store:Provider", "Sqlite")]
    [InlineData("Evaluation:Store:ConnectionString", "Host=db;Bogus Key=1", "Evaluation:Store:Provider", "PostgreSql")]
    [InlineData("Evaluation:Store:ConnectionString", "", "Evaluation:Store:Provider", "PostgreSql")]
    [InlineData("Evaluation:Lease", "00:00:01", "Evaluation:MaxAttempts", "3")]
    public void AQueueSettingThatCannotWorkStopsStartUpNamingIt(string key, string value, string otherKey, string otherValue)
    {
        var e = Assert.Throws<InvalidOperationException>(() => EvaluationHostApp.Build(["--environment", "Development"],
            b => b.Configuration.AddInMemoryCollection(new Dictionary<string, string?> { [key] = value, [otherKey] = otherValue })));
        Assert.Contains(key, e.Message);
    }

    [Fact]
    public async Task PathsStayInsideTheDataDirectoryAndRefusalsSayNothingAboutOutside()
    {
        await using var host = await EvaluationHostServer.StartAsync();
        var outside = TestFolders.New();
        Directory.CreateDirectory(Path.Combine(outside, "people", "alice"));
        Directory.CreateSymbolicLink(Path.Combine(host.DataDirectory, "real-link"), Path.Combine(outside, "people"));
        Directory.CreateSymbolicLink(Path.Combine(host.DataDirectory, "dead-link"), Path.Combine(outside, "nothing-here"));
        Directory.CreateDirectory(Path.Combine(host.DataDirectory, "nested"));
        Directory.CreateSymbolicLink(Path.Combine(host.DataDirectory, "nested", "up"), "../..");   // a relative link out

        string Identities(string path) => $$"""{ "data": { "kind": "identities", "path": "{{path}}" } }""";
        foreach (var path in new[] { "/etc", outside, "../" + Path.GetFileName(outside), "faces/../../x" })
        {
            var (message, fields) = await Refusal(host, Identities(path));
            Assert.Equal(["data.path"], fields);
            Assert.Contains("relative to the host's data directory", message);
        }
        // A link to a folder that exists and one to a folder that does not are refused alike: no existence oracle.
        var real = await Refusal(host, Identities("real-link"));
        var dead = await Refusal(host, Identities("dead-link"));
        Assert.Equal(real.Message, dead.Message);
        Assert.Equal(real.Fields, dead.Fields);
        Assert.Contains("leads outside", real.Message);
        Assert.Contains("leads outside", (await Refusal(host, Identities("nested/up/" + Path.GetFileName(host.DataDirectory) + "x"))).Message);
        var (pretrained, preFields) = await Refusal(host, """{ "attack": { "mode": "fine-tune", "preTrained": "/root/model.safetensors" } }""");
        Assert.Equal(["attack.preTrained"], preFields);
        Assert.Equal(["attack.preTrainFaces"], (await Refusal(host, """{ "attack": { "mode": "fine-tune", "preTrainFaces": "../faces" } }""")).Fields);
        Assert.Empty((await host.Client.ListJobsAsync(new ListJobsRequest())).Jobs);
    }

    [Fact]
    public async Task SpecsCannotNameTheHostsOwnFiles()
    {
        await using var host = await EvaluationHostServer.StartAsync();
        Directory.CreateDirectory(Path.Combine(host.DataDirectory, "jobs", "someone-elses-job"));
        Directory.CreateSymbolicLink(Path.Combine(host.DataDirectory, "innocent"), Path.Combine(host.DataDirectory, "jobs"));
        foreach (var path in new[] { "jobs", "jobs/someone-elses-job", "innocent/someone-elses-job", "./jobs" })
        {
            var (message, fields) = await Refusal(host, $$"""{ "data": { "kind": "identities", "path": "{{path}}" } }""");
            Assert.Equal(["data.path"], fields);
            Assert.Contains("the host's own files", message);
        }
        foreach (var file in new[] { "jobs.db", "jobs.db-wal", "jobs/someone-elses-job/work/hacker.safetensors" })
            Assert.Equal(["attack.preTrained"], (await Refusal(host, $$"""{ "attack": { "mode": "fine-tune", "preTrained": "{{file}}" } }""")).Fields);
        Assert.Empty((await host.Client.ListJobsAsync(new ListJobsRequest())).Jobs);
    }

    [Theory]
    [InlineData("faces\\u0000/../../etc", "U+0000")]
    [InlineData("faces\\nalice", "U+000A")]
    [InlineData("faces\\u007f", "U+007F")]
    public async Task PathsWithControlCharactersAreRefusedNamingTheField(string escaped, string named)
    {
        await using var host = await EvaluationHostServer.StartAsync();
        Directory.CreateDirectory(Path.Combine(host.DataDirectory, "faces"));
        var (message, fields) = await Refusal(host, $$"""{ "data": { "kind": "identities", "path": "{{escaped}}" } }""");
        Assert.Equal(["data.path"], fields);
        Assert.Contains("control character", message);
        Assert.Contains(named, message);
        Assert.Empty((await host.Client.ListJobsAsync(new ListJobsRequest())).Jobs);
    }

    [Fact]
    public async Task SpecsCarryNoSecretsAndOnlyConfiguredSidecarsAreUsed()
    {
        await using var host = await EvaluationHostServer.StartAsync(overrides: new Dictionary<string, string?>
        {
            ["Evaluation:Sidecars:0:Address"] = "http://127.0.0.1:5051", ["Evaluation:Sidecars:0:ApiKey"] = "sidecar-secret-7f3a",
        });
        var (message, fields) = await Refusal(host, """{ "protection": { "source": "sidecar", "sidecarAddress": "http://127.0.0.1:5051", "sidecarApiKey": "k" } }""");
        Assert.Equal(["protection.sidecarApiKey"], fields);
        Assert.DoesNotContain("sidecar-secret-7f3a", message);
        (message, fields) = await Refusal(host, """{ "protection": { "source": "sidecar", "sidecarAddress": "http://attacker.example:80" } }""");
        Assert.Equal(["protection.sidecarAddress"], fields);
        Assert.Contains("http://127.0.0.1:5051", message);
        // A host whose torch started capped cannot run bfloat16 products at speed: refused, saying why, not run slow.
        (message, fields) = await Refusal(host, """{ "protection": { "source": "posts", "precision": "bfloat16" } }""");
        Assert.Equal(["protection.precision"], fields);
        Assert.Contains("slower than float32", message);

        // Admitted for a run, a configured sidecar gets the host's key; the spec as stored never has one.
        var admission = host.Services.GetRequiredService<SpecAdmission>();
        var spec = AttackSpec.Parse("""{ "protection": { "source": "sidecar", "sidecarAddress": "http://127.0.0.1:5051/" } }""");
        Assert.Equal("sidecar-secret-7f3a", admission.ForRun(spec).Protection.SidecarApiKey);
        Assert.Null(admission.ForRun(spec).WithoutSecrets().Protection.SidecarApiKey);
    }

    [Fact]
    public async Task KeysStoredByOlderVersionsAreRemovedAtStartUp()
    {
        var dataDirectory = TestFolders.New();
        var options = Options.Create(new EvaluationHostOptions { DataDirectory = dataDirectory });
        var old = AttackSpec.Parse(QuickJob) with { Protection = new ProtectionSpec(ProtectionSource.None, SidecarApiKey: "leaked-key-4411") };
        var id = new SqliteJobStore(options).Add(EvaluationHostServer.Tenant, "old", old.ToJson())!.JobId;
        new SqliteJobStore(options).Finish(id, JobState.Cancelled);

        await using var host = await EvaluationHostServer.StartAsync(dataDirectory);
        Assert.DoesNotContain("leaked-key-4411", (await host.Client.GetJobAsync(new GetJobRequest { JobId = id })).SpecJson);
        Assert.DoesNotContain("leaked-key-4411", (await host.Client.ListJobsAsync(new ListJobsRequest())).Jobs.Single().SpecJson);
        foreach (var file in Directory.GetFiles(dataDirectory, "jobs.db*"))
            Assert.False(File.ReadAllText(file, System.Text.Encoding.Latin1).Contains("leaked-key-4411"), $"{Path.GetFileName(file)} still holds the key");
    }

    [Fact]
    public async Task AJobThatKeepsStoppingTheHostFailsAfterItsAttemptsAndTheQueueMovesOn()
    {
        var dataDirectory = TestFolders.New();
        var store = new SqliteJobStore(Options.Create(new EvaluationHostOptions { DataDirectory = dataDirectory }));
        var crasher = store.Add(EvaluationHostServer.Tenant, "crasher", QuickJob)!.JobId;
        var behind = store.Add(EvaluationHostServer.Tenant, "behind", QuickJob)!.JobId;
        for (int i = 0; i < 2; i++)
        {
            Assert.Equal(crasher, store.StartNext("dead-host", TimeSpan.FromMinutes(5)).Job!.JobId);   // started, then the host dies (as an OOM kill would leave it)
            store.RecoverInterrupted();
        }

        await using var host = await EvaluationHostServer.StartAsync(dataDirectory, new Dictionary<string, string?> { ["Evaluation:MaxAttempts"] = "2" });
        var failed = await WaitUntilEnded(host, crasher);
        Assert.Equal(JobState.Failed, failed.State);
        Assert.Contains("stopped 2 times", failed.Error);
        Assert.Equal(JobState.Succeeded, (await WaitUntilEnded(host, behind)).State);
    }

    [Fact]
    public async Task EndedJobsAreDeletedOnRequestOrAfterTheirRetentionButRunningOnesAreNot()
    {
        var dataDirectory = TestFolders.New();
        var options = Options.Create(new EvaluationHostOptions { DataDirectory = dataDirectory });
        var anHourAgo = new ManualClock(DateTimeOffset.UtcNow.AddHours(-1));   // the job ended long before the host starts
        var expired = new SqliteJobStore(options, anHourAgo).Add(EvaluationHostServer.Tenant, "expired", QuickJob)!.JobId;
        new SqliteJobStore(options, anHourAgo).Finish(expired, JobState.Cancelled);
        Directory.CreateDirectory(options.Value.JobFolder(expired));

        await using var host = await EvaluationHostServer.StartAsync(dataDirectory, new Dictionary<string, string?> { ["Evaluation:Retention"] = "00:00:00.040" });
        for (int i = 0; i < 100 && Directory.Exists(options.Value.JobFolder(expired)); i++) await Task.Delay(100);
        Assert.False(Directory.Exists(options.Value.JobFolder(expired)));
        Assert.Equal(StatusCode.NotFound, (await Assert.ThrowsAsync<RpcException>(async () => await host.Client.GetJobAsync(new GetJobRequest { JobId = expired }))).StatusCode);

        var job = await host.Client.StartJobAsync(new StartJobRequest { SpecJson = QuickJob.Replace("\"epochs\": 1", "\"epochs\": 200") });
        for (int i = 0; i < 100 && (await host.Client.GetJobAsync(new GetJobRequest { JobId = job.JobId })).State != JobState.Running; i++) await Task.Delay(100);
        var busy = await Assert.ThrowsAsync<RpcException>(async () => await host.Client.DeleteJobAsync(new DeleteJobRequest { JobId = job.JobId }));
        Assert.Equal(StatusCode.FailedPrecondition, busy.StatusCode);
        await host.Client.CancelJobAsync(new CancelJobRequest { JobId = job.JobId });
        await WaitUntilEnded(host, job.JobId);
        Assert.True(Directory.Exists(options.Value.JobFolder(job.JobId)));
        Assert.True((await host.Client.DeleteJobAsync(new DeleteJobRequest { JobId = job.JobId })).Deleted);
        Assert.False(Directory.Exists(options.Value.JobFolder(job.JobId)));
        Assert.DoesNotContain((await host.Client.ListJobsAsync(new ListJobsRequest())).Jobs, j => j.JobId == job.JobId);
    }

    [Fact]
    public async Task AJobThatTakesTheDataVolumeBelowItsFloorFailsWithItsWorkKeptAndNoNewJobIsQueued()
    {
        await using var host = await EvaluationHostServer.StartAsync();
        var job = await host.Client.StartJobAsync(new StartJobRequest { SpecJson = QuickJob.Replace("\"epochs\": 1", "\"epochs\": 200") });
        for (int i = 0; i < 100 && (await host.Client.GetJobAsync(new GetJobRequest { JobId = job.JobId })).State != JobState.Running; i++) await Task.Delay(100);

        // The floor raised past what the volume has, as an operator would with the job running (read live, no restart).
        var config = (IConfigurationRoot)host.Services.GetRequiredService<IConfiguration>();
        config["Evaluation:MinFreeDiskBytes"] = (1L << 60).ToString();
        config.Reload();
        var ended = await WaitUntilEnded(host, job.JobId);
        Assert.Equal(JobState.Failed, ended.State);
        Assert.Contains("Evaluation:MinFreeDiskBytes", ended.Error);
        Assert.True(Directory.Exists(Path.Combine(host.DataDirectory, EvaluationHostOptions.JobsFolder, job.JobId)), "the job's work so far is kept");

        var refused = await Assert.ThrowsAsync<RpcException>(async () => await host.Client.StartJobAsync(new StartJobRequest { SpecJson = QuickJob }));
        Assert.Equal(StatusCode.ResourceExhausted, refused.StatusCode);
        Assert.Contains("free; jobs must leave", refused.Status.Detail);
    }

    [Fact]
    public async Task WatchingAMadeUpJobKeepsNothingAndASlowWatcherIsToldInsteadOfMissingEvents()
    {
        await using var host = await EvaluationHostServer.StartAsync();
        var events = host.Services.GetRequiredService<JobEvents>();
        for (int i = 0; i < 20; i++)
        {
            using var watch = host.Client.WatchJob(new WatchJobRequest { JobId = $"made-up-{i}" });
            Assert.Equal(StatusCode.NotFound, (await Assert.ThrowsAsync<RpcException>(async () => await watch.ResponseStream.MoveNext())).StatusCode);
        }
        Assert.Equal(0, events.WatchedJobs);

        // A watcher that reads nothing while more events arrive than its buffer holds: every buffered event, then the error.
        using var slow = events.Subscribe("job-x");
        for (int i = 0; i <= JobEvents.BufferedEvents; i++) events.Publish(new JobEvent { JobId = "job-x", Done = i });
        var read = new List<int>();
        var error = await Assert.ThrowsAsync<WatcherFellBehindException>(async () =>
        {
            await foreach (var e in slow.Reader.ReadAllAsync()) read.Add(e.Done);
        });
        Assert.Equal(Enumerable.Range(0, JobEvents.BufferedEvents), read);
        Assert.Contains("watch again", error.Message);
    }
}
