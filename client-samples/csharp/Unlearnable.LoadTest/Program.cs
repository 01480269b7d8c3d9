using System.CommandLine;
using System.Text.Json;
using Unlearnable.LoadTest;

// Closed-loop users against a sidecar (throughput, latency percentiles, batch sizes), or a flood
// (every post answered? the server's peak memory). Loopback sidecars only: it is a test tool.
var root = LoadTestCommand.Create();
var parsed = root.Parse(args);
if (parsed.Errors.Count > 0)   // a bad flag or value is refused before any load is sent
{
    foreach (var error in parsed.Errors) await Console.Error.WriteLineAsync("error: " + error.Message);
    return 2;
}
return await parsed.InvokeAsync();

static class LoadTestCommand
{
    // Comma lists ("1,16") as the load tester has always taken them; parsed and checked in one place, so
    // a bad list is one clear error at parse time.
    static Option<int[]> CommaList(string name, string description, int[] fallback, int min, int max, int? count = null) => new(name)
    {
        Description = description,
        DefaultValueFactory = _ => fallback,
        CustomParser = result =>
        {
            var text = result.Tokens.Count == 1 ? result.Tokens[0].Value : "";
            var parts = text.Split(',', StringSplitOptions.TrimEntries);
            int[] values = parts.All(p => int.TryParse(p, out _)) ? [.. parts.Select(int.Parse)] : [];
            if (values.Length == 0) result.AddError($"{name} takes comma-separated whole numbers, e.g. {(fallback.Length > 0 ? string.Join(',', fallback) : "32,8,200")}; got '{text}'");
            else if (count is { } n && values.Length != n) result.AddError($"{name} takes {n} numbers; got {values.Length}");
            else if (values.Any(v => v < min || v > max)) result.AddError($"{name} values must each be in {min}..{max}");
            return values;
        },
    };

    // A value that did not parse has its parser's error already; checking it too would throw.
    static void Must<T>(Option<T> option, Func<T, bool> ok, string problem) => option.Validators.Add(result =>
    {
        T value;
        try { value = result.GetValueOrDefault<T>()!; }
        catch (InvalidOperationException) { return; }
        if (!ok(value)) result.AddError(problem);
    });

    public static RootCommand Create()
    {
        var address = new Option<Uri>("--address")
        {
            Description = "The sidecar's gRPC address (loopback only)",
            DefaultValueFactory = _ => new Uri("http://127.0.0.1:5051"),
            CustomParser = result =>
            {
                var text = result.Tokens.Count == 1 ? result.Tokens[0].Value : "";
                if (!Uri.TryCreate(text, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https")) result.AddError($"--address must be an http(s) address, e.g. http://127.0.0.1:5051; got '{text}'");
                else if (!uri.IsLoopback) result.AddError($"--address {uri} is not a loopback address: the load tester only loads sidecars on this machine");
                return uri;
            },
        };
        var apiKey = new Option<string>("--api-key") { Description = "API key (default: $UNLEARNABLE_API_KEY)", DefaultValueFactory = _ => Environment.GetEnvironmentVariable("UNLEARNABLE_API_KEY") ?? "" };
        var users = CommaList("--users", "Concurrent users per run, one run per number", [1, 16], 1, 1024);
        var posts = new Option<int>("--posts") { Description = "Posts per user", DefaultValueFactory = _ => 20 };
        Must(posts, n => n >= 1, "--posts must be at least 1");
        var seconds = new Option<double>("--seconds") { Description = "Longest a run may take", DefaultValueFactory = _ => 120 };
        Must(seconds, t => t is > 0 and <= 86_400, "--seconds must be in (0, 86400]");
        var image = new Option<int>("--image") { Description = "Side of each posted JPEG in pixels (4:3)", DefaultValueFactory = _ => 256 };
        Must(image, side => side is >= 16 and <= 12_000, "--image must be in 16..12000");
        var flood = CommaList("--flood", "Flood instead: STREAMS,POSTS_PER_STREAM,UNARY_POSTS at once", [], 0, 100_000, count: 3);
        var megapixels = new Option<double>("--megapixels") { Description = "Size of each flood post (grainy JPEG)", DefaultValueFactory = _ => 12 };
        Must(megapixels, mp => mp is > 0 and <= 50, "--megapixels must be in (0, 50]");
        var serverPid = new Option<int?>("--server-pid") { Description = "The sidecar's process id (Linux): its peak memory during a flood, or its resident memory per --memory-window during a run" };
        var memoryWindow = new Option<double>("--memory-window") { Description = "Seconds per window of the server's mean resident memory (with --server-pid)", DefaultValueFactory = _ => 300 };
        Must(memoryWindow, w => w is >= 5 and <= 86_400, "--memory-window must be in 5..86400 seconds");
        var priority = new Option<PostPriority>("--priority")
        {
            Description = "How the users' posts ask to be scheduled: Interactive (uploads) or Bulk (a backfill; run a second load tester with Interactive users beside it to see them overtake)",
            DefaultValueFactory = _ => PostPriority.Interactive,
        };
        var json = new Option<FileInfo?>("--json") { Description = "Also write the report as JSON here" };

        var root = new RootCommand("Load a sidecar on this machine: closed-loop users (throughput, p50/p95/p99 latency, batch sizes), or a flood (--flood).")
            { address, apiKey, users, posts, seconds, image, priority, flood, megapixels, serverPid, memoryWindow, json };
        root.SetAction(async (result, cancel) =>
        {
            string target = result.GetValue(address)!.ToString().TrimEnd('/'), key = result.GetValue(apiKey)!;
            object report;
            int exit = 0;
            if (result.GetResult(flood) is { Implicit: false })
            {
                var shape = result.GetValue(flood)!;
                var floodReport = await FloodRun.RunAsync(new FloodSettings(target, key, shape[0], shape[1], shape[2], result.GetValue(megapixels), result.GetValue(serverPid)));
                Console.WriteLine(floodReport);
                report = floodReport;
                exit = floodReport.Unanswered == 0 && floodReport.StreamsEndedInError == 0 ? 0 : 1;
            }
            else
            {
                var reports = new List<LoadReport>();
                foreach (var count in result.GetValue(users)!)
                {
                    var run = await LoadRun.RunAsync(new LoadSettings(target, key, count, result.GetValue(posts), TimeSpan.FromSeconds(result.GetValue(seconds)), result.GetValue(image), result.GetValue(priority),
                        result.GetValue(serverPid), TimeSpan.FromSeconds(result.GetValue(memoryWindow))));
                    Console.WriteLine(run);
                    reports.Add(run);
                }
                if (reports.Count > 1) Console.WriteLine($"throughput {reports[^1].Users} users / {reports[0].Users} user: {reports[^1].PostsPerSecond / reports[0].PostsPerSecond:F2}x");
                report = reports;
            }
            if (result.GetValue(json) is { } file) await File.WriteAllTextAsync(file.FullName, JsonSerializer.Serialize(report, new JsonSerializerOptions { WriteIndented = true }), cancel);
            return exit;
        });
        return root;
    }
}
