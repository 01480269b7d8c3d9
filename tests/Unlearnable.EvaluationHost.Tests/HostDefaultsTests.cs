namespace Unlearnable.EvaluationHost.Tests;

/// <summary>The evaluation host is built from the same host defaults as the sidecar: its probe and its metrics answer like the sidecar's.</summary>
[Trait("Kind", "Process")]
public class HostDefaultsTests
{
    [Fact]
    public async Task TheHostAnswersItsProbeAndExposesPrometheusMetricsWithoutAKey()
    {
        await using var server = await EvaluationHostServer.StartAsync();
        using var http = new HttpClient();
        Assert.Equal("\"SERVING\"", await http.GetStringAsync($"http://127.0.0.1:{server.HttpPort}/healthz"));
        var metrics = await http.GetStringAsync($"http://127.0.0.1:{server.HttpPort}/metrics");
        Assert.Contains("dotnet_collection_count_total", metrics);   // prometheus-net's default runtime metrics
        Assert.DoesNotContain("http_requests_received_total", metrics);   // no per-request metrics a client could grow
    }
}
