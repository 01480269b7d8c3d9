namespace Unlearnable.Data.Synthetic;

/// <summary>
/// Writes five different captions for a scene. Each caption picks its own template, its own
/// object to talk about and its own wording, so (as with people's captions) no single caption
/// says everything, and two captions of one image can share few words.
/// </summary>
public static class SceneCaptions
{
    static readonly string[] Counts = ["no", "one", "two", "three", "four"];

    static readonly Func<Scene, SceneObject, SceneObject?, Random, string>[] Templates =
    [
        (s, o, _, r) => $"a {o.SizeWord} {o.Color.Name} {Noun(o, r)} on a {Backdrop(s, r)}",
        (s, o, _, r) => $"{Pick(r, "a", "the")} {o.Color.Name} {Noun(o, r)} sits {Where(o)}",
        (s, o, _, r) => $"{Counts[s.Objects.Count]} {(s.Objects.Count == 1 ? "shape" : "shapes")} on a {Backdrop(s, r)}, including a {o.Color.Name} {Noun(o, r)}",
        (s, o, other, r) => other is null
            ? $"a single {o.Color.Name} {Noun(o, r)} alone on the canvas"
            : $"a {o.Color.Name} {Noun(o, r)} and a {other.Color.Name} {Noun(other, r)}",
        (s, o, _, r) => $"there is a {o.SizeWord} {Noun(o, r)} colored {o.Color.Name} {Where(o)}",
        (s, o, _, r) => $"{Backdrop(s, r)} behind a {o.Color.Name} {Noun(o, r)}",
        (s, _, _, r) => "picture of " + Join(s.Objects.Select(x => $"a {(r.Next(2) == 0 ? x.SizeWord + " " : "")}{x.Color.Name} {Noun(x, r)}").ToList()),
        (s, o, other, r) => other is null
            ? $"just one {Noun(o, r)} here, it is {o.Color.Name} and {o.SizeWord}"
            : $"a {Noun(o, r)} in {o.Color.Name} with a {other.Color.Name} {Noun(other, r)} beside it",
        (s, o, _, r) => $"simple drawing: {o.Color.Name} {Noun(o, r)} {Where(o)}",
        (s, o, _, r) => $"the {o.Color.Name} {Noun(o, r)} is {o.SizeWord} and the background is {s.Background.Name}",
    ];

    public static IReadOnlyList<string> Write(Scene scene, Random rng, int count = 5)
    {
        var order = Enumerable.Range(0, Templates.Length).OrderBy(_ => rng.Next()).Take(count);
        return order.Select(t =>
        {
            var o = scene.Objects[rng.Next(scene.Objects.Count)];
            var others = scene.Objects.Where(x => x != o).ToList();
            var other = others.Count == 0 ? null : others[rng.Next(others.Count)];
            return Templates[t](scene, o, other, rng);
        }).ToList();
    }

    static string Noun(SceneObject o, Random r) => o.Shape switch
    {
        Shape.Circle => Pick(r, "circle", "circle", "disc"),
        Shape.Square => Pick(r, "square", "square", "box"),
        Shape.Triangle => "triangle",
        Shape.Star => "star",
        Shape.Diamond => Pick(r, "diamond", "diamond", "rhombus"),
        Shape.Cross => Pick(r, "cross", "cross", "plus sign"),
        Shape.Ring => Pick(r, "ring", "ring", "donut"),
        Shape.Hexagon => "hexagon",
        _ => o.Shape.ToString().ToLowerInvariant(),
    };

    static string Backdrop(Scene s, Random r)
    {
        string pattern = s.Pattern == Pattern.Plain ? Pick(r, "plain ", "") : s.Pattern.ToString().ToLowerInvariant() + " ";
        return $"{pattern}{s.Background.Name} {Pick(r, "background", "backdrop")}";
    }

    static string Where(SceneObject o) => o.Position == "center" ? "in the center" : $"at the {o.Position}";

    static string Pick(Random r, params string[] options) => options[r.Next(options.Length)];

    static string Join(IReadOnlyList<string> parts) =>
        parts.Count == 1 ? parts[0] : string.Join(", ", parts.Take(parts.Count - 1)) + " and " + parts[^1];
}
