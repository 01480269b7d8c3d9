using Grpc.Core;
using Unlearnable.Contracts.V1;
using Unlearnable.Tests;

namespace Unlearnable.EvaluationHost.Tests;

/// <summary>
/// Several evaluation host processes on one PostgreSQL queue and one shared data folder: each job
/// runs once, a job whose host dies is resumed by another, and any host can watch or cancel any job.
/// </summary>
[Trait("Kind", "Process")]
public class SharedQueueTests
{
    static string Job(int epochs, string name) => $$"""
        { "name": "{{name}}", "seed": 3, "preset": "tiny",
          "data": { "kind": "synthetic-scenes", "images": 40, "testImages": 8 },
          "protection": { "source": "none" },
          "attack": { "mode": "from-scratch", "epochs": {{epochs}}, "learningRate": 1e-3, "batchSize": 8, "warmupSteps": 1 } }
        """;

    sealed class Host(HostProcess process) : IAsyncDisposable
    {
        public EvaluationService.EvaluationServiceClient Client { get; } = new(process.Channel);
        public Metadata Auth { get; } = new() { { "x-api-key", EvaluationHostServer.ApiKey } };
        public void Kill() => process.Kill();
        public ValueTask DisposeAsync() => process.DisposeAsync();

        public async Task<Job> Get(string id) => await Client.GetJobAsync(new GetJobRequest { JobId = id }, Auth);

        public async Task<Job> WaitFor(string id, Func<Job, bool> condition, string what)
        {
            var until = DateTime.UtcNow.AddMinutes(4);
            while (true)
            {
                var job = await Get(id);
                if (condition(job)) return job;
                if (DateTime.UtcNow > until) throw new TimeoutException($"job {id} never {what}; it is {job.State}, attempts {job.Attempts}, worker '{job.Worker}'");
                await Task.Delay(200);
            }
        }

        /// <param name="subscribed">set once the host has answered with the job's state, i.e. once the watch is in place</param>
        public async Task<List<JobEvent>> Watch(string id, TaskCompletionSource? subscribed = null)
        {
            var seen = new List<JobEvent>();
            using var call = Client.WatchJob(new WatchJobRequest { JobId = id }, Auth, deadline: DateTime.UtcNow.AddMinutes(4));
            await foreach (var e in call.ResponseStream.ReadAllAsync())
            {
                seen.Add(e);
                subscribed?.TrySetResult();
            }
            subscribed?.TrySetException(new InvalidOperationException($"the watch of {id} ended without an event"));
            return seen;
        }
    }

    static async Task<Host> StartHost(string name, string dataDirectory, string database, string lease = "00:00:20") => new(await HostProcess.StartAsync("unlearnable-evaluation-host.dll",
        Path.GetFullPath(Path.Combine(dataDirectory, "..", name)), new Dictionary<string, string>
        {
            ["Evaluation__DataDirectory"] = dataDirectory,
            ["Evaluation__Device"] = "cpu",
            ["Evaluation__Auth__ApiKeys__0"] = EvaluationHostServer.ApiKey,
            ["Evaluation__Store__Provider"] = "PostgreSql",
            ["Evaluation__Store__ConnectionString"] = database,
            ["Evaluation__Lease"] = lease,
        }, readyWithin: TimeSpan.FromMinutes(1)));

    static string NewDataDirectory() => Path.Combine(TestFolders.New(), "data");

    [SkippableFact]
    public async Task TwoHostsShareTheQueueRunEachJobOnceAndStreamEachOthersJobs()
    {
        Skip.If(PostgresServer.Unavailable is not null, PostgresServer.Unavailable);
        var database = PostgresServer.NewDatabase();
        var data = NewDataDirectory();
        var starting = new[] { "a", "b" }.Select(name => StartHost(name, data, database)).ToArray();
        await using var a = await starting[0];
        await using var b = await starting[1];

        // Submitted to both, so both hosts' workers wake at once; any host may run any of them.
        var jobs = new List<string>();
        for (int i = 0; i < 4; i++)
        {
            var to = i % 2 == 0 ? a : b;
            jobs.Add((await to.Client.StartJobAsync(new StartJobRequest { SpecJson = Job(epochs: 3, name: $"shared {i}") }, to.Auth)).JobId);
        }
        var watched = await b.Watch(jobs[0]);   // submitted to a, watched on b
        Assert.Equal(JobState.Succeeded, watched[^1].State);
        Assert.Contains(watched, e => e.Phase == "evaluate");

        var ended = new List<Job>();
        foreach (var id in jobs) ended.Add(await b.WaitFor(id, j => j.State is JobState.Succeeded or JobState.Failed or JobState.Cancelled, "ended"));
        Assert.All(ended, j => Assert.Equal((JobState.Succeeded, 1), (j.State, j.Attempts)));   // no job ran twice
        Assert.Equal(2, ended.Select(j => j.Worker).Distinct().Count());                        // both hosts took jobs
        Assert.All(jobs, id => Assert.True(File.Exists(Path.Combine(data, "jobs", id, "report.json"))));
    }

    [SkippableFact]
    public async Task AJobWhoseHostDiesIsResumedByAnotherHostAndAnyHostCanCancelIt()
    {
        Skip.If(PostgresServer.Unavailable is not null, PostgresServer.Unavailable);
        var database = PostgresServer.NewDatabase();
        var data = NewDataDirectory();
        string id, first;
        await using (var doomed = await StartHost("doomed", data, database, lease: "00:00:06"))
        {
            id = (await doomed.Client.StartJobAsync(new StartJobRequest { SpecJson = Job(epochs: 400, name: "long") }, doomed.Auth)).JobId;
            first = (await doomed.WaitFor(id, j => j.LastEvent?.Epoch >= 2, "reached epoch 2")).Worker;
            doomed.Kill();   // no requeue, no last word: only its lease, which stops being renewed
        }

        await using var heir = await StartHost("heir", data, database, lease: "00:00:06");
        var resumed = await heir.WaitFor(id, j => j.State == JobState.Running && j.Attempts == 2, "was taken again");
        Assert.NotEqual(first, resumed.Worker);
        Assert.True(File.Exists(Path.Combine(data, "jobs", id, "spec.json")));

        await using var other = await StartHost("other", data, database, lease: "00:00:06");
        var subscribed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var watching = other.Watch(id, subscribed);   // on a host that does not run the job
        // A freshly started host can take a while to answer its first call; cancelling before the
        // watch is in place would leave it only the final state to report.
        await subscribed.Task.WaitAsync(TimeSpan.FromMinutes(1));
        int watchedFrom = (await heir.Get(id)).LastEvent?.Epoch ?? 0;   // read after the watch began, so a later epoch reaches it
        await heir.WaitFor(id, j => j.LastEvent?.Epoch > watchedFrom, "trained on after resuming");
        var cancelled = await other.Client.CancelJobAsync(new CancelJobRequest { JobId = id }, other.Auth);
        Assert.Equal(JobState.Running, cancelled.State);   // asked; the host that runs it stops at its next step
        var events = await watching;
        Assert.Equal(JobState.Cancelled, events[^1].State);
        Assert.Contains(events.Skip(1), e => e.State == JobState.Running);   // the running host's progress, relayed as it came
        Assert.Equal((JobState.Cancelled, 2), ((await other.Get(id)).State, (await other.Get(id)).Attempts));
    }
}
