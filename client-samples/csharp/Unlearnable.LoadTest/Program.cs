using System.Text.Json;
using Unlearnable.LoadTest;

// unlearnable-loadtest --address http://127.0.0.1:5051 --api-key KEY --users 1,16 --posts 20 --seconds 120 [--image 256] [--json report.json]
var options = new Dictionary<string, string>();
for (int i = 0; i + 1 < args.Length; i += 2) options[args[i].TrimStart('-')] = args[i + 1];
string Get(string name, string fallback) => options.GetValueOrDefault(name, fallback);
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
