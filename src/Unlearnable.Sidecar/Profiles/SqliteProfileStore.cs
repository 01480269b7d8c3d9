using System.Data.Common;
using Microsoft.Data.Sqlite;
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
    readonly string _connectionString;

    public SqliteProfileStore(IOptions<SidecarOptions> options) : base(options.Value.Profiles)
    {
        var path = Path.GetFullPath(options.Value.Profiles.DatabasePath);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        _connectionString = new SqliteConnectionStringBuilder { DataSource = path, Mode = SqliteOpenMode.ReadWriteCreate, Pooling = true, DefaultTimeout = 30 }.ToString();
        Execute("PRAGMA journal_mode = WAL;\n" + Schema("INTEGER", "BLOB"));
    }

    protected override string[] ResultKey => ["rowid"];

    protected override DbConnection Open()
    {
        var db = new SqliteConnection(_connectionString);
        db.Open();
        using var busy = db.CreateCommand();
        // secure_delete: a deleted row's bytes are overwritten with zeros, not left in free pages (a setting per connection).
        busy.CommandText = "PRAGMA busy_timeout = 30000; PRAGMA secure_delete = ON;";
        busy.ExecuteNonQuery();
        return db;
    }

    // The write-ahead log still holds the pages as they were before the delete: copied back and the log emptied.
    // Best effort: a reader in the middle of a snapshot keeps the log until the next delete or checkpoint.
    protected override void Erase(DbConnection db)
    {
        using var checkpoint = db.CreateCommand();
        checkpoint.CommandText = "PRAGMA wal_checkpoint(TRUNCATE);";
        checkpoint.ExecuteNonQuery();
    }
}
