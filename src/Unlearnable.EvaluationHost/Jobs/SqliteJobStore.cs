using System.Data.Common;
using Microsoft.Extensions.Options;
using Unlearnable.Hosting;

namespace Unlearnable.EvaluationHost.Jobs;

/// <summary>
/// The job queue in an SQLite file beside the job folders, for one host. Jobs found running at
/// start-up were this host's, interrupted by a stop or a crash: they go back to the head of the
/// queue at once. Rows from before secrets were kept out of specs are cleaned at start-up, and
/// the file is rewritten so the old values leave its free pages too.
/// </summary>
public sealed class SqliteJobStore : JobStore
{
    readonly SqliteFile _file;

    public SqliteJobStore(IOptions<EvaluationHostOptions> options, TimeProvider? clock = null, ApiKeyPolicy? keys = null) : base(clock, keys)
    {
        _file = new SqliteFile(options.Value.DatabasePath);
        Execute("CREATE TABLE IF NOT EXISTS jobs (" + Columns.Replace("{T}", "TEXT").Replace("{B}", "BLOB") + ");");
        AddLeaseColumns();
        OwnUntenantedJobs();
        if (RemoveStoredSecrets() > 0) Execute("VACUUM; PRAGMA wal_checkpoint(TRUNCATE);");
    }

    protected override string Table => "jobs";

    protected override DbConnection Open() => _file.Open();

    // Queues made before jobs had leases or tenants.
    void AddLeaseColumns()
    {
        var present = new HashSet<string>();
        using (var db = Open())
        using (var info = db.Command("SELECT name FROM pragma_table_info('jobs')"))
        using (var row = info.ExecuteReader())
            while (row.Read()) present.Add(row.GetString(0));
        foreach (var (column, type) in new[] { ("owner", "TEXT"), ("lease_until_ms", "INTEGER NOT NULL DEFAULT 0"), ("cancel_requested", "INTEGER NOT NULL DEFAULT 0"), ("tenant", "TEXT") })
            if (!present.Contains(column)) Execute($"ALTER TABLE jobs ADD COLUMN {column} {type}");
    }

    protected override string NowSql => "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)";

    public override int RecoverInterrupted() => Execute($"UPDATE jobs SET {Interrupted} WHERE state = @r",
        ("@q", (int)Contracts.V1.JobState.Queued), ("@c", (int)Contracts.V1.JobState.Cancelled), ("@now", Now), ("@r", (int)Contracts.V1.JobState.Running));
}
