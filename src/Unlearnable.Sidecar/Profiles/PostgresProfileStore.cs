using System.Data.Common;
using Microsoft.Extensions.Options;
using Npgsql;
using Unlearnable.Hosting;

namespace Unlearnable.Sidecar.Profiles;

/// <summary>
/// Profiles and results on a PostgreSQL server that several sidecar replicas share, so a user's
/// sticky trigger, a retried post_id and a deleted profile mean the same thing on every replica.
/// A sticky user's first trigger is decided under a session advisory lock keyed by the user, which
/// every replica's lock sees.
/// </summary>
public sealed class PostgresProfileStore : ProfileStore, IDisposable
{
    readonly NpgsqlDataSource _source;

    public PostgresProfileStore(IOptions<SidecarOptions> options, TimeProvider? clock = null, ApiKeyPolicy? keys = null) : base(options.Value.Profiles, clock, keys)
    {
        _source = Postgres.Connect(options.Value.Profiles.Store.ConnectionString!, "unlearnable-sidecar");
        Postgres.EnsureSchema(_source, transaction => EnsureSchema(transaction, "BIGINT", "BYTEA"));
    }

    protected override string ColumnsSql => "SELECT column_name::text FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = @t";

    public void Dispose() => _source.Dispose();

    protected override string TablePrefix => "sidecar_";
    protected override string UserRowLock => " FOR SHARE";
    protected override string SizeColumn => "bytes";
    protected override DbConnection Open() => _source.OpenConnection();

    public override async Task<IAsyncDisposable> LockUserAsync(UserKey user, CancellationToken cancel)
    {
        // This process's posts of the user queue in memory first, so each replica holds at most one
        // connection per user; that post then takes the user's session lock on the server, which
        // every replica's lock sees. Tried rather than waited for, so a cancelled post stops waiting
        // at once instead of when the server answers.
        var local = await base.LockUserAsync(user, cancel);
        NpgsqlConnection? db = null;
        try
        {
            db = await _source.OpenConnectionAsync(cancel);
            await using var attempt = LockCommand("pg_try_advisory_lock", db, user);
            while (!(bool)(await attempt.ExecuteScalarAsync(cancel))!) await Task.Delay(25, cancel);
            return new AdvisoryLock(db, user, local);
        }
        catch
        {
            // The lock may have been granted just as the wait was cancelled: give it back before the
            // connection goes back to the pool (a broken connection is closed, which ends the lock too).
            if (db is not null) await AdvisoryLock.Unlock(db, user);
            await local.DisposeAsync();
            throw;
        }
    }

    static NpgsqlCommand LockCommand(string function, NpgsqlConnection db, UserKey user)
    {
        var command = new NpgsqlCommand($"SELECT {function}({Postgres.LockKey})", db);
        command.Parameters.AddWithValue("name", $"unlearnable.user:{user.Tenant}/{user.Id}");   // tenant names hold no '/'

        return command;
    }

    sealed class AdvisoryLock(NpgsqlConnection db, UserKey user, IAsyncDisposable local) : IAsyncDisposable
    {
        int _released;

        public async ValueTask DisposeAsync()
        {
            if (Interlocked.Exchange(ref _released, 1) != 0) return;
            await Unlock(db, user);
            await local.DisposeAsync();
        }

        public static async Task Unlock(NpgsqlConnection db, UserKey user)
        {
            try
            {
                await using var unlock = LockCommand("pg_advisory_unlock", db, user);
                await unlock.ExecuteScalarAsync(CancellationToken.None);
            }
            catch (Exception e) when (e is NpgsqlException or InvalidOperationException) { }   // the connection is broken: closing it ends the session's locks
            finally { await db.DisposeAsync(); }
        }
    }
}
