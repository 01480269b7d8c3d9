using System.Xml.Linq;
using Unlearnable.Tests;

namespace Unlearnable.Cli.Tests;

/// <summary>The project graph stays layered: leaves stay leaves, and test projects test the library they are named after.</summary>
public class ProjectGraphTests
{
    static readonly string Root = RepoFiles.Root;

    static IEnumerable<string> References(string project) =>
        XDocument.Load(project).Descendants("ProjectReference")
            .Select(r => Path.GetFullPath(Path.Combine(Path.GetDirectoryName(project)!, r.Attribute("Include")!.Value.Replace('\\', '/'))));

    static string Project(string name) => Path.Combine(Root, "src", name, name + ".csproj");

    static HashSet<string> Reachable(string project)
    {
        var seen = new HashSet<string>();
        var todo = new Stack<string>([project]);
        while (todo.TryPop(out var next))
            foreach (var reference in References(next))
                if (seen.Add(Path.GetFileNameWithoutExtension(reference))) todo.Push(reference);
        return seen;
    }

    [Theory]
    [InlineData("Unlearnable.Evaluation", "Unlearnable.Experiments")]
    [InlineData("Unlearnable.Experiments", "Unlearnable.Evaluation")]
    [InlineData("Unlearnable.Protection", "Unlearnable.Experiments")]
    [InlineData("Unlearnable.Sidecar", "Unlearnable.Evaluation")]
    [InlineData("Unlearnable.Sidecar", "Unlearnable.Charts")]
    [InlineData("Unlearnable.Imaging", "Unlearnable.Data")]
    public void NoPathLeadsFromOneProjectToTheOther(string from, string to) =>
        Assert.DoesNotContain(to, Reachable(Project(from)));

    [Fact]
    public void TheCommandLineReferencesEveryProjectItImports()
    {
        var cli = Path.Combine(Root, "src", "Unlearnable.Cli");
        var imported = Directory.EnumerateFiles(cli, "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}"))
            .SelectMany(File.ReadLines)
            .Select(line => System.Text.RegularExpressions.Regex.Match(line, @"^using (Unlearnable\.[A-Za-z]+)"))
            .Where(m => m.Success && m.Groups[1].Value != "Unlearnable.Cli")
            .Select(m => m.Groups[1].Value).ToHashSet();
        var direct = References(Path.Combine(cli, "Unlearnable.Cli.csproj")).Select(Path.GetFileNameWithoutExtension).ToHashSet();
        Assert.Empty(imported.Except(direct!));
    }

    [Fact]
    public void EveryTestProjectReferencesTheLibraryItIsNamedAfter()
    {
        var projects = Directory.GetDirectories(Path.Combine(Root, "tests"), "Unlearnable.*.Tests");
        Assert.True(projects.Length >= 9, $"found only {projects.Length} test projects");
        foreach (var folder in projects)
        {
            var name = Path.GetFileName(folder);
            var library = name[..^".Tests".Length];
            var direct = References(Path.Combine(folder, name + ".csproj")).Select(Path.GetFileNameWithoutExtension);
            Assert.True(direct.Contains(library), $"{name} does not reference {library}");
        }
    }
}
