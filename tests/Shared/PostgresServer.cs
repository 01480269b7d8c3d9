using System.Diagnostics;
using Npgsql;

namespace Unlearnable.Tests;

/// <summary>
/// A real PostgreSQL server for the tests: Debian's binaries, a cluster made by initdb in a
/// temporary folder, trust authentication on loopback, a free port. One server per test process,
/// stopped when the process exits; each test asks for a fresh database. Where the binaries are
/// missing, <see cref="Unavailable"/> says so and the PostgreSQL tests skip with that message
/// (.ci/run installs the package, so CI always runs them).
/// </summary>
public static class PostgresServer
{
    static readonly Lazy<(string? ConnectionString, string? Problem)> Server = new(Start);

    /// <summary>Why no server can run here, or null when one can.</summary>
    public static string? Unavailable => Server.Value.Problem;

    /// <summary>A connection string to a new, empty database on the shared server.</summary>
    public static string NewDatabase()
    {
        if (Server.Value.Problem is { } problem) throw new InvalidOperationException(problem);
        var name = "t_" + Guid.NewGuid().ToString("N")[..12];
        using (var db = new NpgsqlConnection(Server.Value.ConnectionString))
        {
            db.Open();
            using var create = new NpgsqlCommand($"CREATE DATABASE {name}", db);
            create.ExecuteNonQuery();
        }
        return new NpgsqlConnectionStringBuilder(Server.Value.ConnectionString) { Database = name }.ConnectionString;
    }

    static string? BinDirectory()
    {
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':'))
            if (dir.Length > 0 && File.Exists(Path.Combine(dir, "initdb")) && File.Exists(Path.Combine(dir, "pg_ctl"))) return dir;
        const string debian = "/usr/lib/postgresql";
        if (!Directory.Exists(debian)) return null;
        return Directory.GetDirectories(debian).Select(v => Path.Combine(v, "bin"))
            .Where(bin => File.Exists(Path.Combine(bin, "initdb")))
            .OrderByDescending(bin => int.TryParse(Path.GetFileName(Path.GetDirectoryName(bin)), out var v) ? v : 0).FirstOrDefault();
    }

    static (string?, string?) Start()
    {
        var bin = BinDirectory();
        if (bin is null) return (null, "PostgreSQL is not installed here (no initdb on PATH or under /usr/lib/postgresql/*/bin); .ci/run installs Debian's postgresql package");
        // PostgreSQL refuses to run as root: as root, the cluster belongs to the package's postgres user,
        // in a folder of its own outside this run's (private) temporary folder.
        bool root = Environment.UserName == "root";
        var parent = root ? "/tmp" : Path.GetTempPath();
        // The test host is often ended before its exit handler has stopped the cluster: stop and remove the clusters
        // of test processes that no longer exist, and earlier runs' stopped ones (an hour old, so another test
        // assembly's cluster still being made is left alone).
        foreach (var old in Directory.GetDirectories(parent, "unlearnable-pg-*"))
        {
            var owner = Path.Combine(old, "owner.pid");
            bool orphaned = File.Exists(owner) && int.TryParse(File.ReadAllText(owner), out var pid) && TestFolders.ProcessEnded(pid);
            bool stale = !File.Exists(Path.Combine(old, "data", "postmaster.pid")) && Directory.GetLastWriteTimeUtc(old) < DateTime.UtcNow.AddHours(-1);
            if (!orphaned && !stale) continue;
            if (orphaned) StopCluster(bin, root, Path.Combine(old, "data"));
            Run("rm", null, "-rf", old);
        }
        var folder = Path.Combine(parent, "unlearnable-pg-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, "owner.pid"), Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture));
        if (root && Run("chown", null, "postgres:postgres", folder) is { } chown) return (null, "cannot hand the cluster folder to the postgres user: " + chown);
        var data = Path.Combine(folder, "data");
        string? Pg(string tool, params string[] args) => root
            ? Run("runuser", null, ["-u", "postgres", "--", Path.Combine(bin, tool), .. args])
            : Run(Path.Combine(bin, tool), null, args);
        if (Pg("initdb", "-D", data, "-U", "unlearnable", "--auth=trust", "-E", "UTF8", "--no-sync") is { } init) return (null, "initdb failed: " + init);
        int port = LoopbackPorts.Free();
        if (Pg("pg_ctl", "-D", data, "-l", Path.Combine(folder, "server.log"), "-w", "-t", "60",
                "-o", $"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c max_connections=200", "start") is { } start)
            return (null, "the server did not start: " + start + ReadLog(folder));
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            StopCluster(bin, root, data);
            Run("rm", null, "-rf", folder);
        };
        return (new NpgsqlConnectionStringBuilder { Host = "127.0.0.1", Port = port, Username = "unlearnable", Database = "postgres", MaxPoolSize = 40 }.ConnectionString, null);
    }

    static string ReadLog(string folder)
    {
        var log = Path.Combine(folder, "server.log");
        return File.Exists(log) ? "\n" + File.ReadAllText(log) : "";
    }

    static void StopCluster(string bin, bool asPostgresUser, string data)
    {
        string[] stop = [Path.Combine(bin, "pg_ctl"), "-D", data, "-m", "immediate", "stop"];
        if (asPostgresUser) Run("runuser", null, ["-u", "postgres", "--", .. stop]);
        else Run(stop[0], null, stop[1..]);
    }

    /// <summary>Runs a tool; null when it succeeded, else what it printed.</summary>
    static string? Run(string file, string? workingDirectory, params string[] args)
    {
        var info = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = workingDirectory ?? "/" };
        foreach (var arg in args) info.ArgumentList.Add(arg);
        try
        {
            using var process = Process.Start(info)!;
            var output = process.StandardOutput.ReadToEndAsync();
            var error = process.StandardError.ReadToEnd();
            process.WaitForExit();
            return process.ExitCode == 0 ? null : $"{Path.GetFileName(file)} exited {process.ExitCode}: {error}{output.Result}";
        }
        catch (System.ComponentModel.Win32Exception e) { return $"{file}: {e.Message}"; }
    }
}
