using Google.Protobuf;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Options;
using Unlearnable.Contracts.V1;

namespace Unlearnable.EvaluationHost.Jobs;

/// <summary>
/// The job queue in an SQLite file: every job with its spec, state, times, attempts and last
/// progress event. A job is queued, running, or ended (succeeded, failed, cancelled); the queue
/// is first come, first served. Jobs found running at start-up were interrupted by a stop or a
/// crash and go back to the head of the queue, where they resume from their work folder.
/// Specs are stored without secrets; rows from before that rule are cleaned at start-up.
/// </summary>
public sealed class JobStore
{
    readonly string _connectionString;

    public JobStore(IOptions<EvaluationHostOptions> options)
    {
        var path = options.Value.DatabasePath;
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        _connectionString = new SqliteConnectionStringBuilder { DataSource = path, Mode = SqliteOpenMode.ReadWriteCreate, Pooling = true, DefaultTimeout = 30 }.ToString();
        using var db = Open();
        Execute(db, """
            PRAGMA journal_mode = WAL;
            CREATE TABLE IF NOT EXISTS jobs (
              id TEXT PRIMARY KEY, name TEXT NOT NULL, spec TEXT NOT NULL, state INTEGER NOT NULL, error TEXT NOT NULL DEFAULT '',
              created_ms INTEGER NOT NULL, started_ms INTEGER NOT NULL DEFAULT 0, finished_ms INTEGER NOT NULL DEFAULT 0,
              attempts INTEGER NOT NULL DEFAULT 0, last_event BLOB, seq INTEGER NOT NULL);
            """);
        RemoveStoredSecrets(db);
    }

    void RemoveStoredSecrets(SqliteConnection db)
    {
        int cleaned = 0;
        foreach (var job in Query("WHERE spec LIKE '%sidecarApiKey%'"))
        {
            var clean = Evaluation.AttackSpec.Parse(job.SpecJson).WithoutSecrets().ToJson();
            if (clean == job.SpecJson) continue;
            Execute(db, "UPDATE jobs SET spec = $spec WHERE id = $id", ("$spec", clean), ("$id", job.JobId));
            cleaned++;
        }
        // The old values stay in free pages and the write-ahead log until both are rewritten.
        if (cleaned > 0) Execute(db, "PRAGMA secure_delete = ON; VACUUM; PRAGMA wal_checkpoint(TRUNCATE);");
    }

    SqliteConnection Open()
    {
        var db = new SqliteConnection(_connectionString);
        db.Open();
        Execute(db, "PRAGMA busy_timeout = 30000;");
        return db;
    }

    static void Execute(SqliteConnection db, string sql, params (string Name, object? Value)[] parameters)
    {
        using var command = db.CreateCommand();
        command.CommandText = sql;
        foreach (var (name, value) in parameters) command.Parameters.AddWithValue(name, value ?? DBNull.Value);
        command.ExecuteNonQuery();
    }

    static long Now => DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();

    public Job Add(string name, string specJson)
    {
        var id = Guid.NewGuid().ToString("N")[..16];
        using var db = Open();
        Execute(db, "INSERT INTO jobs (id, name, spec, state, created_ms, seq) VALUES ($id, $name, $spec, $state, $now, (SELECT COALESCE(MAX(seq), 0) + 1 FROM jobs))",
            ("$id", id), ("$name", name), ("$spec", specJson), ("$state", (int)JobState.Queued), ("$now", Now));
        return Get(id)!;
    }

    public Job? Get(string id) => Query("WHERE id = $id", ("$id", id)).FirstOrDefault();

    public IReadOnlyList<Job> List() => Query("ORDER BY seq");

    /// <summary>The oldest queued job, now marked running with one more attempt; null when the queue is empty.</summary>
    public Job? StartNext()
    {
        using var db = Open();
        using var transaction = db.BeginTransaction(System.Data.IsolationLevel.Serializable);
        using var pick = db.CreateCommand();
        pick.Transaction = transaction;
        pick.CommandText = "SELECT id FROM jobs WHERE state = $q ORDER BY seq LIMIT 1";
        pick.Parameters.AddWithValue("$q", (int)JobState.Queued);
        if (pick.ExecuteScalar() is not string id) return null;
        using var update = db.CreateCommand();
        update.Transaction = transaction;
        update.CommandText = "UPDATE jobs SET state = $r, started_ms = $now, attempts = attempts + 1 WHERE id = $id";
        update.Parameters.AddWithValue("$r", (int)JobState.Running);
        update.Parameters.AddWithValue("$now", Now);
        update.Parameters.AddWithValue("$id", id);
        update.ExecuteNonQuery();
        transaction.Commit();
        return Get(id);
    }

    /// <summary>Ends a job (succeeded, failed or cancelled) unless it has ended already (or, with <paramref name="onlyIfQueued"/>, started); returns whether it changed.</summary>
    public bool Finish(string id, JobState state, string error = "", bool onlyIfQueued = false)
    {
        using var db = Open();
        using var command = db.CreateCommand();
        command.CommandText = "UPDATE jobs SET state = $s, error = $e, finished_ms = $now WHERE id = $id AND state IN ($q, $r)" + (onlyIfQueued ? " AND state = $q" : "");
        foreach (var (k, v) in new (string, object)[] { ("$s", (int)state), ("$e", error), ("$now", Now), ("$id", id), ("$q", (int)JobState.Queued), ("$r", (int)JobState.Running) })
            command.Parameters.AddWithValue(k, v);
        return command.ExecuteNonQuery() == 1;
    }

    /// <summary>Puts running jobs back in the queue, keeping their place (start-up after a crash, or a stop mid-job).</summary>
    public int Requeue(string? id = null)
    {
        using var db = Open();
        using var command = db.CreateCommand();
        command.CommandText = "UPDATE jobs SET state = $q WHERE state = $r" + (id is null ? "" : " AND id = $id");
        command.Parameters.AddWithValue("$q", (int)JobState.Queued);
        command.Parameters.AddWithValue("$r", (int)JobState.Running);
        if (id is not null) command.Parameters.AddWithValue("$id", id);
        return command.ExecuteNonQuery();
    }

    /// <summary>Deletes an ended job's row; false when there is none or it has not ended (queued or running).</summary>
    public bool Delete(string id)
    {
        using var db = Open();
        using var command = db.CreateCommand();
        command.CommandText = "DELETE FROM jobs WHERE id = $id AND state NOT IN ($q, $r)";
        command.Parameters.AddWithValue("$id", id);
        command.Parameters.AddWithValue("$q", (int)JobState.Queued);
        command.Parameters.AddWithValue("$r", (int)JobState.Running);
        return command.ExecuteNonQuery() == 1;
    }

    /// <summary>Ended jobs that finished before <paramref name="cutoffMs"/>, oldest first.</summary>
    public IReadOnlyList<Job> EndedBefore(long cutoffMs) =>
        Query("WHERE state NOT IN ($q, $r) AND finished_ms < $cut ORDER BY finished_ms", ("$q", (int)JobState.Queued), ("$r", (int)JobState.Running), ("$cut", cutoffMs));

    public void SaveEvent(JobEvent e)
    {
        using var db = Open();
        Execute(db, "UPDATE jobs SET last_event = $e WHERE id = $id", ("$e", e.ToByteArray()), ("$id", e.JobId));
    }

    IReadOnlyList<Job> Query(string where, params (string Name, object Value)[] parameters)
    {
        using var db = Open();
        using var command = db.CreateCommand();
        command.CommandText = "SELECT id, name, spec, state, error, created_ms, started_ms, finished_ms, attempts, last_event FROM jobs " + where;
        foreach (var (name, value) in parameters) command.Parameters.AddWithValue(name, value);
        using var row = command.ExecuteReader();
        var jobs = new List<Job>();
        while (row.Read())
        {
            var job = new Job
            {
                JobId = row.GetString(0), Name = row.GetString(1), SpecJson = row.GetString(2), State = (JobState)row.GetInt32(3), Error = row.GetString(4),
                CreatedUnixMs = row.GetInt64(5), StartedUnixMs = row.GetInt64(6), FinishedUnixMs = row.GetInt64(7), Attempts = row.GetInt32(8),
            };
            if (!row.IsDBNull(9)) job.LastEvent = JobEvent.Parser.ParseFrom((byte[])row[9]);
            jobs.Add(job);
        }
        return jobs;
    }
}
