using System.Text.Json.Nodes;
using Google.Rpc;
using Grpc.Core;
using Unlearnable.Contracts.V1;

namespace Unlearnable.EvaluationHost.Tests;

[Trait("Kind", "Process")]
public class EvaluationServiceTests
{
    static string Spec(int epochs, string name = "host test") => $$"""
        {
          "name": "{{name}}", "seed": 5, "preset": "tiny",
          "data": { "kind": "synthetic-scenes", "images": 40, "testImages": 10 },
          "protection": { "source": "none" },
          "attack": { "mode": "from-scratch", "epochs": {{epochs}}, "learningRate": 1e-3, "batchSize": 10, "warmupSteps": 2 }
        }
        """;

    static async Task<List<JobEvent>> Watch(EvaluationHostServer host, string jobId, Func<JobEvent, bool>? stopWhen = null)
    {
        var seen = new List<JobEvent>();
        using var call = host.Client.WatchJob(new WatchJobRequest { JobId = jobId }, deadline: DateTime.UtcNow.AddMinutes(8));
        await foreach (var e in call.ResponseStream.ReadAllAsync())
        {
            seen.Add(e);
            if (stopWhen?.Invoke(e) == true) break;
        }
        return seen;
    }

    [Fact]
    public async Task AJobStreamsItsProgressSurvivesAHostRestartMidJobAndDeliversItsReport()
    {
        string dataDirectory, jobId;
        await using (var host = await EvaluationHostServer.StartAsync())
        {
            dataDirectory = host.DataDirectory;
            var job = await host.Client.StartJobAsync(new StartJobRequest { SpecJson = Spec(epochs: 3) });
            jobId = job.JobId;
            Assert.Equal("host test", job.Name);
            var before = await Watch(host, jobId, e => e.Phase == "evaluate" && e.Epoch == 1 && e.Message.Contains("Hit@10"));
            Assert.Contains(before, e => e.Phase == "train" && e.Epoch == 1 && e.Total > 0 && e.HasLoss);
            Assert.All(before, e => Assert.Equal(jobId, e.JobId));
        }   // the host stops mid-job, as a deploy or a crash would

        await using (var restarted = await EvaluationHostServer.StartAsync(dataDirectory))
        {
            var after = await Watch(restarted, jobId);
            Assert.Equal(JobState.Succeeded, after[^1].State);
            Assert.DoesNotContain(after, e => e.Phase == "train" && e.Epoch == 1);   // epoch 1 was done before the restart
            Assert.Contains(after, e => e.Phase == "train" && e.Epoch == 3);

            var job = await restarted.Client.GetJobAsync(new GetJobRequest { JobId = jobId });
            Assert.Equal((JobState.Succeeded, 2), (job.State, job.Attempts));
            Assert.True(job.FinishedUnixMs >= job.StartedUnixMs && job.StartedUnixMs >= job.CreatedUnixMs);

            var report = await restarted.Client.GetReportAsync(new GetReportRequest { JobId = jobId, IncludeImages = true });
            var clean = JsonNode.Parse(report.ReportJson)!["arms"]!.AsArray().Single()!;
            Assert.Equal([0, 1, 2, 3], clean["epochs"]!.AsArray().Select(e => e!["epoch"]!.GetValue<int>()));
            Assert.Contains("| clean |", report.ReportMd);
            Assert.Contains(report.Files, f => f.Name == "i2t-medr.png" && f.Content.Length > 2000);
            Assert.Contains((await restarted.Client.ListJobsAsync(new ListJobsRequest())).Jobs, j => j.JobId == jobId);
        }
    }

    [Fact]
    public async Task GetJobGivesAFinishedJobsKeptSharesAndTheWorstCaseOverTheDefences()
    {
        await using var host = await EvaluationHostServer.StartAsync();
        var job = await host.Client.StartJobAsync(new StartJobRequest { SpecJson = """
            {
              "name": "verdict", "seed": 2, "preset": "tiny",
              "data": { "kind": "synthetic-identities", "identities": 4, "photos": 3 },
              "protection": { "source": "mem", "rounds": 1, "surrogateSteps": 1, "pgdSteps": 2, "triggerRounds": 1, "topK": 3, "batchSize": 4 },
              "attack": { "mode": "from-scratch", "epochs": 1, "learningRate": 1e-3, "batchSize": 4, "warmupSteps": 1 },
              "arms": { "countermeasures": ["grayscale", "jpeg:75+augment"] }
            }
            """ });
        Assert.False((await host.Client.GetJobAsync(new GetJobRequest { JobId = job.JobId })).Verdict is { Arms.Count: > 0 });
        Assert.Equal(JobState.Succeeded, (await Watch(host, job.JobId))[^1].State);

        var finished = await host.Client.GetJobAsync(new GetJobRequest { JobId = job.JobId });
        var report = JsonNode.Parse((await host.Client.GetReportAsync(new GetReportRequest { JobId = job.JobId })).ReportJson)!["verdict"]!;
        Assert.Equal(["protected", "protected + grayscale", "protected + jpeg:75+augment"], finished.Verdict.Arms.Select(a => a.Arm));
        Assert.Equal(["", "grayscale", "jpeg:75+augment"], finished.Verdict.Arms.Select(a => a.Defence));
        var worst = report["worstImageToText"]!;
        Assert.Equal(worst["arm"]?.GetValue<string>() ?? "", finished.Verdict.WorstImageToTextArm);
        if (worst["kept"] is { } kept)
        {
            Assert.Equal(kept.GetValue<double>(), finished.Verdict.WorstImageToText, 9);
            Assert.Equal(finished.Verdict.Arms.Where(a => a.HasImageToText).Min(a => a.ImageToText), finished.Verdict.WorstImageToText, 9);
        }
        else Assert.False(finished.Verdict.HasWorstImageToText);
        // From scratch the clean hacker's gain is over the fresh model: the clean arm before its first epoch.
        var clean = JsonNode.Parse((await host.Client.GetReportAsync(new GetReportRequest { JobId = job.JobId })).ReportJson)!["arms"]!.AsArray()
            .Single(a => a!["name"]!.GetValue<string>() == "clean")!;
        Assert.Equal(clean["i2t"]!["hit10"]!.GetValue<double>() - clean["epochs"]![0]!["i2t"]!["hit10"]!.GetValue<double>(), finished.Verdict.CleanGainImageToText, 9);
    }

    [Fact]
    public async Task CancellingStopsARunningJobAtItsNextStepAndAQueuedOneBeforeItStarts()
    {
        await using var host = await EvaluationHostServer.StartAsync();
        var running = await host.Client.StartJobAsync(new StartJobRequest { SpecJson = Spec(epochs: 200, name: "long") });
        var queued = await host.Client.StartJobAsync(new StartJobRequest { SpecJson = Spec(epochs: 1, name: "next") });
        await Watch(host, running.JobId, e => e.Phase == "train" && e.Total > 0);

        var cancelledWhileQueued = await host.Client.CancelJobAsync(new CancelJobRequest { JobId = queued.JobId });
        Assert.Equal((JobState.Cancelled, 0), (cancelledWhileQueued.State, cancelledWhileQueued.Attempts));

        var watching = Watch(host, running.JobId);
        await host.Client.CancelJobAsync(new CancelJobRequest { JobId = running.JobId });
        var events = await watching;
        Assert.Equal(JobState.Cancelled, events[^1].State);
        Assert.Equal(JobState.Cancelled, (await host.Client.GetJobAsync(new GetJobRequest { JobId = running.JobId })).State);

        var again = await Assert.ThrowsAsync<RpcException>(async () => await host.Client.CancelJobAsync(new CancelJobRequest { JobId = running.JobId }));
        Assert.Equal(StatusCode.FailedPrecondition, again.StatusCode);
        var noReport = await Assert.ThrowsAsync<RpcException>(async () => await host.Client.GetReportAsync(new GetReportRequest { JobId = running.JobId }));
        Assert.Equal(StatusCode.FailedPrecondition, noReport.StatusCode);
        Assert.Contains("Cancelled", noReport.Status.Detail);
    }

    [Fact]
    public async Task BadSpecsAreRefusedBeforeQueueingWithEveryFieldAtFault()
    {
        await using var host = await EvaluationHostServer.StartAsync();
        var empty = Path.Combine(host.DataDirectory, "faces");
        Directory.CreateDirectory(Path.Combine(empty, "alice"));

        async Task<(string Message, List<string> Fields)> Refusal(string json)
        {
            var e = await Assert.ThrowsAsync<RpcException>(async () => await host.Client.StartJobAsync(new StartJobRequest { SpecJson = json }));
            Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
            var details = e.GetRpcStatus()?.GetDetail<BadRequest>();
            return (e.Status.Detail, details?.FieldViolations.Select(v => v.Field).ToList() ?? []);
        }

        var (message, fields) = await Refusal("""{ "preset": "rn49", "arms": { "fractions": [1.5] } }""");
        Assert.Equal(["preset", "arms.fractions[0]"], fields);
        Assert.Contains("unknown architecture 'rn49'", message);
        Assert.Contains("1.5 is outside 0–1", message);
        (message, fields) = await Refusal("""{ "data": { "kind": "identities", "path": "faces" } }""");   // relative to the host's data folder
        Assert.Equal(["data.path"], fields);
        Assert.Contains("no images", message);
        (message, fields) = await Refusal("""{ "data": { "kind": "synthetic-scenes", "images": 500000000 }, "attack": { "epochs": 1000000 } }""");
        Assert.Equal(["data.images", "attack.epochs"], fields);
        Assert.Contains("the limit is", message);
        (message, _) = await Refusal("""{ "attack": { "epochz": 3 } }""");
        Assert.Contains("epochz", message);
        (message, _) = await Refusal("{ not json");
        Assert.Contains("invalid attack spec", message);
        (message, _) = await Refusal("");
        Assert.Contains("spec_json", message);
        (message, fields) = await Refusal("{\"name\": \"" + new string('x', 70_000) + "\"}");
        Assert.Equal(["spec_json"], fields);
        Assert.Contains("the limit is 65536", message);

        Assert.Empty((await host.Client.ListJobsAsync(new ListJobsRequest())).Jobs);
        var missing = await Assert.ThrowsAsync<RpcException>(async () => await host.Client.GetJobAsync(new GetJobRequest { JobId = "nope" }));
        Assert.Equal(StatusCode.NotFound, missing.StatusCode);
    }
}
