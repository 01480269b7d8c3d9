namespace Unlearnable.Tests;

/// <summary>Files the repository ships (example specs and the like), found from the test's output folder up to Sidecar.sln.</summary>
static class RepoFiles
{
    public static string Get(string relative)
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Sidecar.sln"))) return Path.Combine(dir.FullName, relative);
        throw new FileNotFoundException("repository root not found above " + AppContext.BaseDirectory);
    }
}
