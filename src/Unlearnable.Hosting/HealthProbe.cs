namespace Unlearnable.Hosting;

/// <summary>
/// <c>--probe URL</c>: asks a running host's HTTP health endpoint whether it is serving and exits
/// 0 (yes) or 1 (no, or unreachable). Container health checks run it with the host's own binary,
/// so the image needs no curl or wget.
/// </summary>
public static class HealthProbe
{
    /// <returns>The exit code when the arguments ask for a probe; null otherwise (start the host).</returns>
    public static int? RunIfAsked(string[] args)
    {
        int at = Array.IndexOf(args, "--probe");
        if (at < 0) return null;
        if (at + 1 >= args.Length || !Uri.TryCreate(args[at + 1], UriKind.Absolute, out var url) || url.Scheme is not ("http" or "https"))
        {
            Console.Error.WriteLine("--probe needs the health URL, e.g. --probe http://127.0.0.1:5052/healthz");
            return 2;
        }
        using var client = new HttpClient { Timeout = TimeSpan.FromSeconds(3) };
        try
        {
            using var response = client.GetAsync(url).GetAwaiter().GetResult();
            Console.WriteLine($"{url}: {(int)response.StatusCode} {response.Content.ReadAsStringAsync().GetAwaiter().GetResult()}");
            return response.IsSuccessStatusCode ? 0 : 1;
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            Console.WriteLine($"{url}: unreachable ({e.Message})");
            return 1;
        }
    }
}
