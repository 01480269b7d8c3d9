using System.Data.Common;
using Microsoft.Extensions.Options;
using Npgsql;
using Unlearnable.Hosting;

namespace Unlearnable.EvaluationHost.Jobs;

/// <summary>
/// The job queue on a PostgreSQL server that several hosts share. A host takes the oldest job
/// no other host holds (FOR UPDATE SKIP LOCKED), so no job runs twice; a host that dies stops
/// renewing its lease, and its job is taken again by the next host that looks. Stored events
/// are announced with NOTIFY, so a host can stream a job that another host runs.
/// The job folders must be shared between the hosts (one volume), for a job to resume elsewhere.
/// </summary>
public sealed class PostgresJobStore : JobStore, IDisposable
{
    const string Channel = "unlearnable_job_events";
    readonly NpgsqlDataSource _source;

    public PostgresJobStore(IOptions<EvaluationHostOptions> options, TimeProvider? clock = null, ApiKeyPolicy? keys = null) : base(clock, keys)
    {
        _source = Postgres.Connect(options.Value.Store.ConnectionString!, "unlearnable-evaluation-host");
        Postgres.EnsureSchema(_source, $"""
            CREATE TABLE IF NOT EXISTS evaluation_jobs ({Columns.Replace("{T}", "TEXT").Replace("{B}", "BYTEA")});
            ALTER TABLE evaluation_jobs ADD COLUMN IF NOT EXISTS tenant TEXT;
            CREATE INDEX IF NOT EXISTS evaluation_jobs_queue ON evaluation_jobs (state, seq);
            """);
        OwnUntenantedJobs();
        RemoveStoredSecrets();
    }

    public void Dispose() => _source.Dispose();

    protected override string Table => "evaluation_jobs";
    protected override string ClaimLock => " FOR UPDATE SKIP LOCKED";
    protected override DbConnection Open() => _source.OpenConnection();
    protected override string NowSql => "(EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT";

    protected override string SaveEventSql =>
        $"WITH saved AS (UPDATE {Table} SET last_event = @e WHERE id = @id RETURNING id) SELECT pg_notify('{Channel}', id || ' ' || @w) FROM saved";

    /// <summary>Every host shares the queue: a running job is another live host's until its lease runs out, which <see cref="JobStore.StartNext"/> sees.</summary>
    public override int RecoverInterrupted() => 0;

    public override async Task ListenAsync(Action<string, string> onEvent, Action listening, CancellationToken cancel)
    {
        await using var db = await _source.OpenConnectionAsync(cancel);
        db.Notification += (_, n) =>
        {
            var parts = n.Payload.Split(' ', 2);
            if (parts.Length == 2) onEvent(parts[0], parts[1]);
        };
        await using (var listen = new NpgsqlCommand($"LISTEN {Channel}", db)) await listen.ExecuteNonQueryAsync(cancel);
        listening();
        // A quiet connection is asked something now and then, so a dead one fails (and is made again) instead of waiting forever.
        while (true)
            if (!await db.WaitAsync(TimeSpan.FromSeconds(15), cancel))
                await using (var ping = new NpgsqlCommand("SELECT 1", db)) await ping.ExecuteScalarAsync(cancel);
    }
}
