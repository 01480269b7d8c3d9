using System.Text.RegularExpressions;
using Unlearnable.Tests;

namespace Unlearnable.Sidecar.Tests;

/// <summary>
/// What dockerfile-utils does not catch, read from the Dockerfiles themselves: every stage a FROM or COPY --from names
/// exists for every value of the build arguments the file documents, every variable a step uses is declared (ARG in its
/// stage, or ENV in it or the stage it builds on), and the health check and entry point run the DLL the build publishes.
/// </summary>
public partial class DockerfileTests
{
    static readonly string Root = RepoFiles.Root;

    /// <summary>Variables the base images set (the ASP.NET image's unprivileged user).</summary>
    static readonly string[] FromBaseImages = ["APP_UID"];

    [GeneratedRegex(@"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?")]
    private static partial Regex Variable();

    [Theory]
    [InlineData("Dockerfile.sidecar", "Unlearnable.Sidecar")]
    [InlineData("Dockerfile.evaluation-host", "Unlearnable.EvaluationHost")]
    public void EveryStageVariableAndDllTheDockerfileNamesExists(string dockerfile, string project)
    {
        var text = File.ReadAllText(Path.Combine(Root, "deploy", dockerfile));
        // Instructions, with continuation lines joined and comments left out.
        var lines = Regex.Replace(text, @"\\\n", " ").Split('\n').Select(l => l.Trim()).Where(l => l.Length > 0 && !l.StartsWith('#')).ToList();
        var global = lines.TakeWhile(l => !l.StartsWith("FROM ")).Where(l => l.StartsWith("ARG ")).ToDictionary(l => l[4..].Split('=')[0], l => l.Contains('=') ? l.Split('=', 2)[1] : "");
        // Every value a build argument takes: its default and each one the file's comments pass (--build-arg NAME=value).
        var values = global.ToDictionary(a => a.Key, a => Regex.Matches(text, $@"--build-arg {a.Key}=(\w+)").Select(m => m.Groups[1].Value).Append(a.Value).Distinct().ToList());

        var stages = new Dictionary<string, HashSet<string>>();   // stage → variables it declares (ENV, with what it builds on)
        HashSet<string>? declared = null;
        foreach (var line in lines)
        {
            if (line.StartsWith("FROM "))
            {
                var from = Regex.Match(line, @"^FROM (?:--platform=\S+ )?(\S+)(?: AS (\S+))?$");
                Assert.True(from.Success, $"{dockerfile}: cannot read '{line}'");
                string image = from.Groups[1].Value;
                var inherited = new HashSet<string>(FromBaseImages);
                foreach (var name in Variable().Matches(image).Select(m => m.Groups[1].Value))
                {
                    Assert.True(values.ContainsKey(name), $"{dockerfile}: FROM {image} uses {name}, which is no global ARG");
                    foreach (var value in values[name])
                    {
                        var stage = image.Replace("${" + name + "}", value).Replace("$" + name, value);
                        Assert.True(stages.ContainsKey(stage), $"{dockerfile}: with {name}={value}, FROM {image} names stage '{stage}', which is not defined before it");
                        inherited.UnionWith(stages[stage]);
                    }
                }
                if (stages.TryGetValue(image, out var parent)) inherited.UnionWith(parent);
                declared = inherited;
                if (from.Groups[2].Success) stages[from.Groups[2].Value] = declared;
                continue;
            }
            if (declared is null) continue;   // the global ARGs, read above
            var instruction = line.Split(' ', 2)[0];
            if (instruction is "ARG") { declared!.Add(line[4..].Split('=')[0]); continue; }
            if (instruction is "ENV")
            {
                foreach (Match pair in Regex.Matches(line[4..], @"([A-Za-z_][A-Za-z0-9_]*)=")) declared!.Add(pair.Groups[1].Value);
                continue;
            }
            foreach (Match from in Regex.Matches(line, @"--from=(\S+)"))
                Assert.True(stages.ContainsKey(from.Groups[1].Value) || from.Groups[1].Value.Contains(':'), $"{dockerfile}: COPY --from={from.Groups[1].Value} names no stage or image");
            foreach (var name in Variable().Matches(line).Select(m => m.Groups[1].Value))
                Assert.True(declared!.Contains(name), $"{dockerfile}: '{instruction}' uses ${name}, which this stage does not declare (ARG after its FROM, or ENV)");
        }

        // The health check and the entry point run the assembly the build publishes.
        var published = Regex.Match(File.ReadAllText(Path.Combine(Root, "src", project, project + ".csproj")), "<AssemblyName>(.+?)</AssemblyName>").Groups[1].Value + ".dll";
        Assert.Contains($"dotnet publish src/{project} ", text);
        foreach (var instruction in new[] { "HEALTHCHECK", "ENTRYPOINT" })
        {
            var dll = Regex.Match(lines.Single(l => l.StartsWith(instruction)), @"""([\w.-]+\.dll)""").Groups[1].Value;
            Assert.Equal(published, dll);
        }
    }

    [Fact]
    public void TheSidecarImageLooksForItsPublicModelWhereItsBuildPreparedIt()
    {
        var text = Regex.Replace(File.ReadAllText(Path.Combine(Root, "deploy", "Dockerfile.sidecar")), @"\\\n", " ");
        // The stage that prepares: RUN ... --prepare-model FOLDER; the runtime copies FOLDER somewhere; ENV points there.
        var prepare = Regex.Match(text, @"FROM \S+ AS (\S+)\n(?:(?!FROM ).*\n)*?RUN (?:\w+=\S+ )*dotnet unlearnable-sidecar\.dll --prepare-model (\S+)");
        Assert.True(prepare.Success, "no stage runs the published sidecar with --prepare-model");
        var copy = Regex.Match(text, $@"COPY --from={Regex.Escape(prepare.Groups[1].Value)} {Regex.Escape(prepare.Groups[2].Value)} (\S+)");
        Assert.True(copy.Success, $"the runtime image does not copy {prepare.Groups[2].Value} out of stage {prepare.Groups[1].Value}");
        Assert.Matches($@"Sidecar__Model__PreparedDirectory={Regex.Escape(copy.Groups[1].Value)}(\s|$)", text);
        // The image sets no other model setting: its pods run the settings its build prepared for.
        Assert.DoesNotMatch(@"ENV[^\n]*Sidecar__Model__(?!PreparedDirectory)", text);
    }
}
