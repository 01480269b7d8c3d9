using System.Text.Json;
using Unlearnable.LoadTest;

// unlearnable-loadtest --address http://127.0.0.1:5051 --api-key KEY --users 1,16 --posts 20 --seconds 120 [--image 256] [--json report.json]
// unlearnable-loadtest --flood STREAMS,POSTS_PER_STREAM,UNARY [--megapixels 12] [--server-pid PID]   (every post answered? server peak memory)
var options = new Dictionary<string, string>();
for (int i = 0; i + 1 < args.Length; i += 2) options[args[i].TrimStart('-')] = args[i + 1];
string Get(string name, string fallback) => options.GetValueOrDefault(name, fallback);
if (options.TryGetValue("flood", out var flood))
{
    var parts = flood.Split(',').Select(int.Parse).ToArray();
    var floodReport = await FloodRun.RunAsync(new FloodSettings(Get("address", "http://127.0.0.1:5051"), Get("api-key", Environment.GetEnvironmentVariable("UNLEARNABLE_API_KEY") ?? ""),
        parts[0], parts[1], parts[2], double.Parse(Get("megapixels", "12"), System.Globalization.CultureInfo.InvariantCulture),
        options.TryGetValue("server-pid", out var pid) ? int.Parse(pid) : null));
    Console.WriteLine(floodReport);
    if (options.TryGetValue("json", out var floodJson)) File.WriteAllText(floodJson, JsonSerializer.Serialize(floodReport, new JsonSerializerOptions { WriteIndented = true }));
    return floodReport.Unanswered == 0 && floodReport.StreamsEndedInError == 0 ? 0 : 1;
}
var reports = new List<LoadReport>();
foreach (var users in Get("users", "1,16").Split(',').Select(int.Parse))
{
    var settings = new LoadSettings(Get("address", "http://127.0.0.1:5051"), Get("api-key", Environment.GetEnvironmentVariable("UNLEARNABLE_API_KEY") ?? ""),
        users, int.Parse(Get("posts", "20")), TimeSpan.FromSeconds(double.Parse(Get("seconds", "120"), System.Globalization.CultureInfo.InvariantCulture)), int.Parse(Get("image", "256")));
    var report = await LoadRun.RunAsync(settings);
    Console.WriteLine(report);
    reports.Add(report);
}
if (reports.Count > 1) Console.WriteLine($"throughput {reports[^1].Users} users / {reports[0].Users} user: {reports[^1].PostsPerSecond / reports[0].PostsPerSecond:F2}x");
if (options.TryGetValue("json", out var path)) File.WriteAllText(path, JsonSerializer.Serialize(reports, new JsonSerializerOptions { WriteIndented = true }));
return 0;
