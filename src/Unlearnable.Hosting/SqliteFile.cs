using System.Data.Common;
using Microsoft.Data.Sqlite;

namespace Unlearnable.Hosting;

/// <summary>
/// An SQLite file as both hosts keep state in it: created with its folder, in WAL mode (readers never wait for the
/// writer), opened by connections that wait up to 30 s for a busy writer instead of failing and that overwrite a
/// deleted row's bytes with zeros instead of leaving them in free pages.
/// </summary>
public sealed class SqliteFile
{
    readonly string _connectionString;

    public SqliteFile(string path)
    {
        Path = System.IO.Path.GetFullPath(path);
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(Path)!);
        _connectionString = new SqliteConnectionStringBuilder { DataSource = Path, Mode = SqliteOpenMode.ReadWriteCreate, Pooling = true, DefaultTimeout = 30 }.ToString();
        using var db = Open();
        using var wal = db.Command("PRAGMA journal_mode = WAL;");
        wal.ExecuteNonQuery();
    }

    public string Path { get; }

    public DbConnection Open()
    {
        var db = new SqliteConnection(_connectionString);
        db.Open();
        // Both settings are per connection.
        using var settings = db.Command("PRAGMA busy_timeout = 30000; PRAGMA secure_delete = ON;");
        settings.ExecuteNonQuery();
        return db;
    }
}
