using Npgsql;

namespace Unlearnable.Hosting;

/// <summary>Where a host keeps its state: an embedded SQLite file (one process) or a PostgreSQL server (several replicas).</summary>
public enum StoreProvider { Sqlite, PostgreSql }

/// <summary>
/// A host's "Store" settings. SQLite needs nothing more (the file's path is the host's own
/// setting); PostgreSQL needs a connection string (from a secret, not a file in the image).
/// </summary>
public sealed class StoreOptions
{
    public StoreProvider Provider { get; set; } = StoreProvider.Sqlite;

    /// <summary>An Npgsql connection string, e.g. <c>Host=db;Username=unlearnable;Password=…;Database=unlearnable</c>.</summary>
    public string? ConnectionString { get; set; }

    /// <summary>Refuses settings that cannot work, naming the setting (<paramref name="section"/> is e.g. "Sidecar:Profiles:Store").</summary>
    public void Validate(string section)
    {
        if (!Enum.IsDefined(Provider)) throw new InvalidOperationException($"{section}:Provider is {Provider}; use Sqlite or PostgreSql");
        if (Provider != StoreProvider.PostgreSql)
        {
            // Replicas that each quietly kept their own SQLite file would disagree about every user.
            if (!string.IsNullOrWhiteSpace(ConnectionString))
                throw new InvalidOperationException($"{section}:ConnectionString is set but {section}:Provider is {Provider}; set the provider to PostgreSql, or remove the connection string");
            return;
        }
        if (string.IsNullOrWhiteSpace(ConnectionString))
            throw new InvalidOperationException($"{section}:Provider is PostgreSql but {section}:ConnectionString is empty");
        try { _ = new NpgsqlConnectionStringBuilder(ConnectionString); }
        // Not the parser's message: it may quote part of the string, password included.
        catch (ArgumentException) { throw new InvalidOperationException($"{section}:ConnectionString is not a valid PostgreSQL connection string (check its keywords and quoting)"); }
    }
}

/// <summary>Opening a PostgreSQL store: one pooled data source per store, and a schema that replicas starting together create once.</summary>
public static class Postgres
{
    public static NpgsqlDataSource Connect(string connectionString, string applicationName)
    {
        var builder = new NpgsqlConnectionStringBuilder(connectionString);
        if (string.IsNullOrEmpty(builder.ApplicationName)) builder.ApplicationName = applicationName;
        return NpgsqlDataSource.Create(builder.ConnectionString);
    }

    /// <summary>
    /// Runs the schema's DDL (CREATE … IF NOT EXISTS) under a transaction-scoped advisory lock:
    /// two replicas creating the same table at once would otherwise race in PostgreSQL's catalog.
    /// </summary>
    public static void EnsureSchema(NpgsqlDataSource source, string ddl) => EnsureSchema(source, transaction =>
    {
        using var command = transaction.Command(ddl);
        command.ExecuteNonQuery();
    });

    /// <summary>Runs <paramref name="build"/> (which may also move rows) in one transaction under the same lock.</summary>
    public static void EnsureSchema(NpgsqlDataSource source, Action<System.Data.Common.DbTransaction> build)
    {
        using var db = source.OpenConnection();
        using var transaction = db.BeginTransaction();
        using (var command = transaction.Command("SELECT pg_advisory_xact_lock(hashtextextended('unlearnable.schema', 0))")) command.ExecuteNonQuery();
        build(transaction);
        transaction.Commit();
    }

    /// <summary>A 64-bit advisory-lock key for a name, computed by the server so every replica agrees.</summary>
    public const string LockKey = "hashtextextended(@name, 0)";
}
