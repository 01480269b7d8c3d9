namespace Unlearnable.EvaluationHost.Jobs;

/// <summary>
/// A client's path inside a root folder: relative, without "..", and still inside the root
/// once every symbolic link along it is followed. Whether it exists is never looked at, so a
/// refusal says nothing about what lies outside.
/// </summary>
public static class ConfinedPath
{
    const int MaxLinks = 40;   // as the kernel's ELOOP limit: a longer chain is a loop

    /// <returns>The real path, or null with <paramref name="why"/> saying what is wrong.</returns>
    public static string? Resolve(string path, string root, out string why)
    {
        why = "";
        // Before anything else: a NUL ends the path the kernel sees and fails .NET's file APIs with an unexpected error.
        for (int at = 0; at < path.Length; at++)
            if (char.IsControl(path[at]))
            {
                why = $"must not contain control characters (U+{(int)path[at]:X4} at position {at})";
                return null;
            }
        if (Path.IsPathRooted(path) || path.Split('/', '\\').Contains(".."))
        {
            why = "must be a path relative to the host's data directory, without '..'";
            return null;
        }
        var realRoot = Real(Path.GetFullPath(root)) ?? throw new InvalidOperationException($"the data directory {root} is a link loop");
        var real = Real(Path.GetFullPath(path, realRoot));
        if (real is null || !(real == realRoot || real.StartsWith(realRoot + Path.DirectorySeparatorChar, StringComparison.Ordinal)))
        {
            why = "leads outside the host's data directory (through a link)";
            return null;
        }
        return real;
    }

    /// <summary>The path with every link followed, component by component; null for a link loop.</summary>
    static string? Real(string full)
    {
        int links = 0;
        var pending = new Stack<string>(full.Split(Path.DirectorySeparatorChar, StringSplitOptions.RemoveEmptyEntries).Reverse());
        var current = Path.GetPathRoot(full)!;
        while (pending.TryPop(out var part))
        {
            if (part == ".") continue;
            if (part == "..") { current = Path.GetDirectoryName(current) ?? current; continue; }
            var next = Path.Combine(current, part);
            var target = new FileInfo(next).LinkTarget;
            if (target is null)
            {
                current = next;
                continue;
            }
            if (++links > MaxLinks) return null;
            // Follow the link: its target's parts replace this one. A relative target starts from the link's
            // folder (current, already real, so its ".." parts are taken literally); an absolute one from the root.
            foreach (var p in target.Split(Path.DirectorySeparatorChar, StringSplitOptions.RemoveEmptyEntries).Reverse()) pending.Push(p);
            if (Path.IsPathRooted(target)) current = Path.GetPathRoot(target)!;
        }
        return current;
    }
}
