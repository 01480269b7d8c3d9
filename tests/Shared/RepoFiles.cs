namespace Unlearnable.Tests;

/// <summary>Files the repository ships (example specs and the like), found from the test's output folder up to Sidecar.sln.</summary>
static class RepoFiles
{
    /// <summary>The repository's root: the folder with Sidecar.sln.</summary>
    public static string Root { get; } = FindRoot();

    public static string Get(string relative) => Path.Combine(Root, relative);

    static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Sidecar.sln"))) return dir.FullName;
        throw new FileNotFoundException("repository root not found above " + AppContext.BaseDirectory);
    }
}
