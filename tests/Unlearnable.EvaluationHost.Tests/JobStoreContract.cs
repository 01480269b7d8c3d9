using Microsoft.Extensions.Options;
using Unlearnable.Contracts.V1;
using Unlearnable.EvaluationHost.Jobs;
using Unlearnable.Hosting;
using Unlearnable.Tests;

namespace Unlearnable.EvaluationHost.Tests;

/// <summary>
/// What every job queue promises, run against SQLite and against a real PostgreSQL server: two
/// store instances stand for two hosts on one queue (for SQLite, two processes' views of one file).
/// </summary>
public abstract class JobStoreContract
{
    protected abstract (JobStore First, JobStore Second) TwoHosts();
    protected virtual void SkipIfUnavailable() { }

    const string Spec = """{ "name": "queued" }""";
    static readonly TimeSpan Long = TimeSpan.FromMinutes(5);

    [SkippableFact]
    public async Task EveryJobIsTakenOnceEvenWhenHostsAskAtTheSameTime()
    {
        SkipIfUnavailable();
        var (a, b) = TwoHosts();
        var ids = Enumerable.Range(0, 12).Select(i => a.Add("acme", $"job {i}", Spec)!.JobId).ToList();
        var taken = await Task.WhenAll(Enumerable.Range(0, 6).Select(w => Task.Run(() =>
        {
            var store = w % 2 == 0 ? a : b;
            var mine = new List<string>();
            while (store.StartNext($"worker-{w}", Long).Job is { } job) mine.Add(job.JobId);
            return mine;
        })));
        var all = taken.SelectMany(t => t).ToList();
        Assert.Equal(ids.Order(), all.Order());   // each once, none left
        Assert.All(b.List(), j => Assert.Equal((JobState.Running, 1), (j.State, j.Attempts)));
        Assert.Equal(ids[0], a.Get(ids[0])!.JobId);
    }

    [SkippableFact]
    public void AJobWhoseLeaseRunsOutGoesToTheNextHostAndTheFirstCanNoLongerEndIt()
    {
        SkipIfUnavailable();
        var (a, b) = TwoHosts();
        var id = a.Add("acme", "leased", Spec)!.JobId;
        var lease = TimeSpan.FromMilliseconds(600);
        Assert.Equal(id, a.StartNext("host-a", lease).Job!.JobId);
        Assert.Null(b.StartNext("host-b", lease).Job);           // held
        Assert.Equal(LeaseState.Held, a.Renew(id, "host-a", lease));
        a.Renew(id, "host-a", TimeSpan.FromSeconds(-1));          // host-a's last renewal runs out (it died): no wait on the database's clock
        var taken = b.StartNext("host-b", Long).Job!;
        Assert.Equal((id, 2, "host-b"), (taken.JobId, taken.Attempts, taken.Worker));
        Assert.Equal(LeaseState.Lost, a.Renew(id, "host-a", lease));
        Assert.False(a.Finish(id, JobState.Succeeded, worker: "host-a"));
        Assert.Null(a.Requeue(id, "host-a"));
        Assert.True(b.Finish(id, JobState.Succeeded, worker: "host-b"));
        Assert.Equal(JobState.Succeeded, a.Get(id)!.State);
    }

    [SkippableFact]
    public void ACancellationAskedThroughAnyHostIsNeverLost()
    {
        SkipIfUnavailable();
        var (a, b) = TwoHosts();
        var queued = a.Add("acme", "queued", Spec)!.JobId;
        Assert.False(b.RequestCancel(queued));                    // not running: cancelled directly instead
        Assert.True(b.Finish(queued, JobState.Cancelled, onlyIfQueued: true));

        var running = a.Add("acme", "running", Spec)!.JobId;
        a.StartNext("host-a", Long);
        Assert.True(b.RequestCancel(running));
        Assert.Equal(LeaseState.CancelRequested, a.Renew(running, "host-a", Long));
        var stopped = a.Requeue(running, "host-a")!;              // its host stops before it could act on it
        Assert.Equal(JobState.Cancelled, stopped.State);
        Assert.Null(b.StartNext("host-b", Long).Job);

        var orphan = a.Add("acme", "orphan", Spec)!.JobId;
        a.StartNext("host-a", Long);
        Assert.True(b.RequestCancel(orphan));
        a.Renew(orphan, "host-a", TimeSpan.FromSeconds(-1));      // its host died before it read the request: its lease has run out
        var (next, abandoned) = b.StartNext("host-b", Long);
        Assert.Null(next);
        Assert.Equal([(orphan, JobState.Cancelled)], abandoned.Select(j => (j.JobId, j.State)));
    }

    [SkippableFact]
    public void ATenantFindsListsAndCountsOnlyItsOwnJobs()
    {
        SkipIfUnavailable();
        var (a, b) = TwoHosts();
        var first = a.Add("acme", "one", Spec, maxActive: 2)!.JobId;
        var second = b.Add("acme", "two", Spec, maxActive: 2)!.JobId;
        Assert.Null(a.Add("acme", "three", Spec, maxActive: 2));          // two queued: acme's share is full, on every host
        var theirs = b.Add("globex", "one", Spec, maxActive: 2)!.JobId;   // globex's share is its own

        Assert.Null(b.Get(first, "globex"));
        Assert.Equal("one", b.Get(first, "acme")!.Name);
        Assert.Equal([first, second], a.Page("acme", 0, "", 10).Select(r => r.Job.JobId));
        Assert.Equal([theirs], a.Page("globex", 0, "", 10).Select(r => r.Job.JobId));

        Assert.True(a.Finish(first, JobState.Cancelled, onlyIfQueued: true));   // an ended job leaves the share
        Assert.NotNull(b.Add("acme", "three", Spec, maxActive: 2));
    }
}

public sealed class SqliteJobStoreTests : JobStoreContract
{
    protected override (JobStore, JobStore) TwoHosts()
    {
        var options = Options.Create(new EvaluationHostOptions { DataDirectory = TestFolders.New() });
        return (new SqliteJobStore(options), new SqliteJobStore(options));
    }
}

[Trait("Kind", "Process")]
public sealed class PostgresJobStoreTests : JobStoreContract
{
    protected override void SkipIfUnavailable() => Skip.If(PostgresServer.Unavailable is not null, PostgresServer.Unavailable);

    protected override (JobStore, JobStore) TwoHosts()
    {
        var options = Options.Create(new EvaluationHostOptions
        {
            DataDirectory = TestFolders.New(),
            Store = new StoreOptions { Provider = StoreProvider.PostgreSql, ConnectionString = PostgresServer.NewDatabase() },
        });
        return (new PostgresJobStore(options), new PostgresJobStore(options));
    }
}
