using System.Data.Common;
using Unlearnable.Hosting;
using Microsoft.Extensions.Options;

namespace Unlearnable.Sidecar.Profiles;

/// <summary>
/// Profiles and results in an embedded SQLite file (WAL, so readers never wait for the writer; a
/// busy timeout, so concurrent writers queue instead of failing). For one process (or processes on
/// one machine sharing the file); replicas share <see cref="PostgresProfileStore"/>. The file's users
/// are this process's, so the in-process user lock is the whole lock.
/// </summary>
public sealed class SqliteProfileStore : ProfileStore
{
    readonly SqliteFile _file;

    public SqliteProfileStore(IOptions<SidecarOptions> options, TimeProvider? clock = null, ApiKeyPolicy? keys = null) : base(options.Value.Profiles, clock, keys)
    {
        _file = new SqliteFile(options.Value.Profiles.DatabasePath);
        using var db = _file.Open();
        using var transaction = db.BeginTransaction();
        EnsureSchema(transaction, "INTEGER", "BLOB");
        transaction.Commit();
    }

    protected override string ColumnsSql => "SELECT name FROM pragma_table_info(@t)";

    protected override string[] ResultKey => ["rowid"];

    protected override DbConnection Open() => _file.Open();

    // The write-ahead log still holds the pages as they were before the delete: copied back and the log emptied.
    // Best effort: a reader in the middle of a snapshot keeps the log until the next delete or checkpoint.
    protected override void Erase(DbConnection db)
    {
        using var checkpoint = db.CreateCommand();
        checkpoint.CommandText = "PRAGMA wal_checkpoint(TRUNCATE);";
        checkpoint.ExecuteNonQuery();
    }
}
