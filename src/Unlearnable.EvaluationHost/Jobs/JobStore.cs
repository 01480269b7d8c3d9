using System.Data.Common;
using Google.Protobuf;
using Unlearnable.Contracts.V1;
using Unlearnable.Hosting;

namespace Unlearnable.EvaluationHost.Jobs;

/// <summary>Whether a worker still holds a running job, and whether someone asked to cancel it.</summary>
public enum LeaseState { Held, CancelRequested, Lost }

/// <summary>
/// The job queue: every job with its spec, state, times, attempts and last progress event. A job
/// is queued, running, or ended (succeeded, failed, cancelled); the queue is first come, first
/// served. A running job belongs to one worker (a host process) for as long as that worker renews
/// its lease; a worker that dies stops renewing, and the job is taken again — by any host — and
/// resumes from its work folder. Cancelling a job another host runs is a flag its worker reads
/// when it renews. Specs are stored without secrets. Every job is a tenant's (the key's that queued it): a tenant
/// finds, lists and counts only its own.
/// One implementation of the rules over ADO.NET, in two dialects: <see cref="SqliteJobStore"/>
/// (one host, the default) and <see cref="PostgresJobStore"/> (several hosts on one queue).
/// </summary>
public abstract class JobStore
{
    protected abstract string Table { get; }

    /// <summary>What makes two workers never take the same job: nothing for SQLite (one writer at a time), row locks skipped by others for PostgreSQL.</summary>
    protected virtual string ClaimLock => "";

    protected abstract DbConnection Open();

    /// <summary>The database's clock in Unix milliseconds, as SQL: leases are compared on one clock, not each host's.</summary>
    protected abstract string NowSql { get; }

    /// <summary>The statement that stores a job's last event (@id, @e) and tells other hosts' watchers (@w: this worker).</summary>
    protected virtual string SaveEventSql => $"UPDATE {Table} SET last_event = @e WHERE id = @id";

    /// <summary>
    /// Calls <paramref name="onEvent"/>(job, worker) when another process stores a job's event,
    /// after calling <paramref name="listening"/> once it listens (events stored before then are
    /// for the caller to read); one process alone never needs to.
    /// </summary>
    public virtual Task ListenAsync(Action<string, string> onEvent, Action listening, CancellationToken cancel) => Task.Delay(Timeout.Infinite, cancel);

    /// <summary>Puts back jobs interrupted when the process that ran them stopped; one host alone knows all of them were its own.</summary>
    public abstract int RecoverInterrupted();

    protected const string Columns = """
        id {T} PRIMARY KEY, name {T} NOT NULL, spec {T} NOT NULL, state INTEGER NOT NULL, error {T} NOT NULL DEFAULT '',
        created_ms BIGINT NOT NULL, started_ms BIGINT NOT NULL DEFAULT 0, finished_ms BIGINT NOT NULL DEFAULT 0,
        attempts INTEGER NOT NULL DEFAULT 0, last_event {B}, seq BIGINT NOT NULL,
        owner {T}, lease_until_ms BIGINT NOT NULL DEFAULT 0, cancel_requested INTEGER NOT NULL DEFAULT 0, tenant {T}
        """;

    readonly TimeProvider _clock;
    readonly string? _legacyTenant;

    /// <param name="clock">This host's clock, for creation and end times (leases are on the database's, <see cref="NowSql"/>).</param>
    /// <param name="keys">Who owns jobs queued before jobs had tenants; none = the open tenant.</param>
    protected JobStore(TimeProvider? clock, ApiKeyPolicy? keys)
    {
        _clock = clock ?? TimeProvider.System;
        _legacyTenant = keys is null ? ApiKeyPolicy.OpenTenant : keys.LegacyTenant;
    }

    /// <summary>Gives jobs from before tenants (no tenant) to the legacy tenant; refuses to start when the configuration names none.</summary>
    protected void OwnUntenantedJobs()
    {
        if (_legacyTenant is not null) Execute($"UPDATE {Table} SET tenant = @t WHERE tenant IS NULL", ("@t", _legacyTenant));
        else if (Query("WHERE tenant IS NULL LIMIT 1").Count > 0)
            throw new InvalidOperationException("the job queue holds jobs from before tenants and several tenants are configured: " +
                "name the one who owns them in Evaluation:Auth:LegacyTenant");
    }

    protected long Now => _clock.GetUtcNow().ToUnixTimeMilliseconds();
    const int Queued = (int)JobState.Queued, Running = (int)JobState.Running;

    protected int Execute(string sql, params (string Name, object? Value)[] parameters)
    {
        using var db = Open();
        using var command = db.Command(sql, parameters);
        return command.ExecuteNonQuery();
    }

    /// <summary>Rewrites specs stored before secrets were kept out of them; returns how many.</summary>
    protected int RemoveStoredSecrets()
    {
        int cleaned = 0;
        foreach (var job in Query("WHERE spec LIKE '%sidecarApiKey%'"))
        {
            var clean = Evaluation.AttackSpec.Parse(job.SpecJson).WithoutSecrets().ToJson();
            if (clean == job.SpecJson) continue;
            Execute($"UPDATE {Table} SET spec = @spec WHERE id = @id", ("@spec", clean), ("@id", job.JobId));
            cleaned++;
        }
        return cleaned;
    }

    /// <summary>Throws when the queue cannot be reached (the host's health check).</summary>
    public void Ping() => Execute($"SELECT COUNT(*) FROM {Table} WHERE 1 = 0");

    /// <summary>Queues a job for <paramref name="tenant"/>, unless it already has <paramref name="maxActive"/> queued or running (null).</summary>
    public Job? Add(string tenant, string name, string specJson, int maxActive = int.MaxValue)
    {
        var id = Guid.NewGuid().ToString("N")[..16];
        int added = Execute($"""
            INSERT INTO {Table} (id, name, spec, state, created_ms, seq, tenant)
            SELECT @id, @name, @spec, @state, @now, (SELECT COALESCE(MAX(seq), 0) + 1 FROM {Table}), @t
            WHERE (SELECT COUNT(*) FROM {Table} WHERE tenant = @t AND state IN (@state, @r)) < @max
            """, ("@id", id), ("@name", name), ("@spec", specJson), ("@state", Queued), ("@r", Running), ("@now", Now), ("@t", tenant), ("@max", maxActive));
        return added == 1 ? Get(id) : null;
    }

    /// <summary>The job, whoever's it is (the worker's view).</summary>
    public Job? Get(string id) => Query("WHERE id = @id", ("@id", id)).FirstOrDefault();

    /// <summary>The job if it is <paramref name="tenant"/>'s: another tenant's job is as absent as one that never was.</summary>
    public Job? Get(string id, string tenant) => Query("WHERE id = @id AND tenant = @t", ("@id", id), ("@t", tenant)).FirstOrDefault();

    public IReadOnlyList<Job> List() => Query("ORDER BY seq, created_ms");

    /// <summary>
    /// Up to <paramref name="limit"/> of <paramref name="tenant"/>'s jobs after (<paramref name="afterSeq"/>, <paramref name="afterId"/>) in the queue's order, oldest first,
    /// with their sequence numbers. Ordered by the pair: two jobs queued at once may share a sequence number.
    /// </summary>
    public IReadOnlyList<(Job Job, long Seq)> Page(string tenant, long afterSeq, string afterId, int limit) =>
        Rows("WHERE tenant = @t AND (seq > @after OR (seq = @after AND id > @id)) ORDER BY seq, id LIMIT @limit",
            ("@t", tenant), ("@after", afterSeq), ("@id", afterId), ("@limit", limit));

    /// <summary>
    /// The oldest job to run — queued, or running under a lease that ran out (its worker died) —
    /// now running for <paramref name="worker"/> with one more attempt (null when there is none);
    /// and the jobs whose worker died after their cancellation was asked for, which end cancelled
    /// instead (Abandoned, for their watchers to hear of).
    /// </summary>
    public (Job? Job, IReadOnlyList<Job> Abandoned) StartNext(string worker, TimeSpan lease)
    {
        var abandoned = new List<Job>();
        using (var db = Open())
        using (var cancel = db.Command($"UPDATE {Table} SET state = @c, finished_ms = @now WHERE state = @r AND lease_until_ms < {NowSql} AND cancel_requested = 1 RETURNING id",
                   ("@c", (int)JobState.Cancelled), ("@now", Now), ("@r", Running)))
        using (var row = cancel.ExecuteReader())
            while (row.Read()) abandoned.Add(new Job { JobId = row.GetString(0) });
        using var claimDb = Open();
        using var claim = claimDb.Command($"""
            UPDATE {Table} SET state = @r, started_ms = @now, attempts = attempts + 1, owner = @w, lease_until_ms = {NowSql} + @lease
            WHERE id = (SELECT id FROM {Table} WHERE state = @q OR (state = @r AND lease_until_ms < {NowSql} AND cancel_requested = 0)
                        ORDER BY seq, created_ms LIMIT 1{ClaimLock})
            RETURNING id
            """, ("@r", Running), ("@q", Queued), ("@now", Now), ("@w", worker), ("@lease", (long)lease.TotalMilliseconds));
        var job = claim.ExecuteScalar() is string id ? Get(id) : null;
        return (job, [.. abandoned.Select(a => Get(a.JobId)).OfType<Job>()]);
    }

    /// <summary>Extends <paramref name="worker"/>'s lease on a running job; says whether it still holds it and whether it should cancel.</summary>
    public LeaseState Renew(string id, string worker, TimeSpan lease)
    {
        using var db = Open();
        using var renew = db.Command($"UPDATE {Table} SET lease_until_ms = {NowSql} + @lease WHERE id = @id AND owner = @w AND state = @r RETURNING cancel_requested",
            ("@lease", (long)lease.TotalMilliseconds), ("@id", id), ("@w", worker), ("@r", Running));
        return renew.ExecuteScalar() switch
        {
            null => LeaseState.Lost,
            var flag when Convert.ToInt32(flag) == 1 => LeaseState.CancelRequested,
            _ => LeaseState.Held,
        };
    }

    /// <summary>Asks whichever worker runs the job to cancel it; false when it is not running.</summary>
    public bool RequestCancel(string id) =>
        Execute($"UPDATE {Table} SET cancel_requested = 1 WHERE id = @id AND state = @r", ("@id", id), ("@r", Running)) == 1;

    /// <summary>
    /// Ends a job (succeeded, failed or cancelled) unless it has ended already (or, with
    /// <paramref name="onlyIfQueued"/>, started, or, given a <paramref name="worker"/>, belongs to
    /// another worker now); returns whether it changed.
    /// </summary>
    public bool Finish(string id, JobState state, string error = "", bool onlyIfQueued = false, string? worker = null) =>
        Execute($"UPDATE {Table} SET state = @s, error = @e, finished_ms = @now WHERE id = @id AND state IN (@q, @r)"
                + (onlyIfQueued ? " AND state = @q" : "") + (worker is null ? "" : " AND owner = @w"),
            ("@s", (int)state), ("@e", error), ("@now", Now), ("@id", id), ("@q", Queued), ("@r", Running), ("@w", worker)) == 1;

    /// <summary>
    /// Puts a job <paramref name="worker"/> runs back in the queue, keeping its place (its host is
    /// stopping) — or ends it cancelled, when that was asked for meanwhile; null when it is not
    /// that worker's.
    /// </summary>
    public Job? Requeue(string id, string worker) =>
        Execute($"UPDATE {Table} SET {Interrupted} WHERE id = @id AND owner = @w AND state = @r",
            ("@q", Queued), ("@c", (int)JobState.Cancelled), ("@now", Now), ("@id", id), ("@w", worker), ("@r", Running)) == 1 ? Get(id) : null;

    /// <summary>What an interrupted job becomes (@q, @c, @now): queued again to resume, or cancelled when that was asked for.</summary>
    protected const string Interrupted = """
        owner = NULL,
        state = CASE WHEN cancel_requested = 1 THEN @c ELSE @q END,
        finished_ms = CASE WHEN cancel_requested = 1 THEN @now ELSE finished_ms END
        """;

    /// <summary>Deletes an ended job's row; false when there is none or it has not ended (queued or running).</summary>
    public bool Delete(string id) =>
        Execute($"DELETE FROM {Table} WHERE id = @id AND state NOT IN (@q, @r)", ("@id", id), ("@q", Queued), ("@r", Running)) == 1;

    /// <summary>Ended jobs that finished before <paramref name="cutoffMs"/>, oldest first.</summary>
    public IReadOnlyList<Job> EndedBefore(long cutoffMs) =>
        Query("WHERE state NOT IN (@q, @r) AND finished_ms < @cut ORDER BY finished_ms", ("@q", Queued), ("@r", Running), ("@cut", cutoffMs));

    public void SaveEvent(JobEvent e, string worker) => Execute(SaveEventSql, ("@e", e.ToByteArray()), ("@id", e.JobId), ("@w", worker));

    IReadOnlyList<Job> Query(string where, params (string Name, object? Value)[] parameters) => [.. Rows(where, parameters).Select(r => r.Job)];

    List<(Job Job, long Seq)> Rows(string where, params (string Name, object? Value)[] parameters)
    {
        using var db = Open();
        using var command = db.Command($"SELECT id, name, spec, state, error, created_ms, started_ms, finished_ms, attempts, last_event, owner, seq FROM {Table} " + where, parameters);
        using var row = command.ExecuteReader();
        var jobs = new List<(Job, long)>();
        while (row.Read())
        {
            var job = new Job
            {
                JobId = row.GetString(0), Name = row.GetString(1), SpecJson = row.GetString(2), State = (JobState)row.GetInt32(3), Error = row.GetString(4),
                CreatedUnixMs = row.GetInt64(5), StartedUnixMs = row.GetInt64(6), FinishedUnixMs = row.GetInt64(7), Attempts = row.GetInt32(8),
                Worker = row.IsDBNull(10) ? "" : row.GetString(10),
            };
            if (!row.IsDBNull(9)) job.LastEvent = JobEvent.Parser.ParseFrom((byte[])row[9]);
            jobs.Add((job, row.GetInt64(11)));
        }
        return jobs;
    }
}
