using System.Diagnostics;

namespace Unlearnable.Sidecar.Tests;

/// <summary>The build's unlearnable-sidecar.dll run as a command (--probe, --prepare-model): its exit code and what it printed.</summary>
static class SidecarCommand
{
    public static (int Code, string Output) Run(IEnumerable<string> args, IDictionary<string, string>? environment = null, TimeSpan? within = null)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "unlearnable-sidecar.dll"));
        foreach (var arg in args) start.ArgumentList.Add(arg);
        foreach (var (k, v) in environment ?? new Dictionary<string, string>()) start.Environment[k] = v;
        using var process = Process.Start(start)!;
        // Both streams read while it runs, so the wait below is what bounds it.
        var (output, error) = (process.StandardOutput.ReadToEndAsync(), process.StandardError.ReadToEndAsync());
        if (!process.WaitForExit(within ?? TimeSpan.FromMinutes(3))) { process.Kill(entireProcessTree: true); return (-1, "timed out"); }
        return (process.ExitCode, output.Result + error.Result);
    }
}
