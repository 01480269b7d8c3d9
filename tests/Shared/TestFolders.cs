namespace Unlearnable.Tests;

/// <summary>
/// The folders tests write into (servers' databases, surrogates, reports, data sets): all under one root per
/// test process, removed when the process exits. A full run writes several GB; left behind, a few runs on one
/// machine fill its disk and every later run fails with "No space left on device".
/// </summary>
static class TestFolders
{
    const string Prefix = "unlearnable-test-run-";
    static readonly string Root = CreateRoot();

    /// <summary>A new folder's path under this process's root; the caller creates it (some tests need it absent).</summary>
    public static string New() => Path.Combine(Root, Guid.NewGuid().ToString("N"));

    static string CreateRoot()
    {
        RemoveRootsOfEndedProcesses();
        var root = Path.Combine(Path.GetTempPath(), $"{Prefix}{Environment.ProcessId}-{Guid.NewGuid().ToString("N")[..8]}");
        Directory.CreateDirectory(root);
        AppDomain.CurrentDomain.ProcessExit += (_, _) => TryDelete(root);
        return root;
    }

    // A test host that was killed never ran its exit handler: its root names a process that no longer exists.
    static void RemoveRootsOfEndedProcesses()
    {
        foreach (var old in Directory.GetDirectories(Path.GetTempPath(), Prefix + "*"))
        {
            var pid = Path.GetFileName(old)[Prefix.Length..].Split('-')[0];
            if (int.TryParse(pid, out var id) && ProcessEnded(id)) TryDelete(old);
        }
    }

    /// <summary>Whether the process that left something behind is gone (Linux: no /proc entry).</summary>
    public static bool ProcessEnded(int pid) => !Directory.Exists($"/proc/{pid}");

    /// <summary>Removes a folder, leaving it where it cannot be removed (another run's, or busy; the root goes at exit).</summary>
    public static void TryDelete(string folder)
    {
        try { Directory.Delete(folder, recursive: true); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }
}
