using Prometheus;

namespace Unlearnable.Sidecar.Observability;

/// <summary>Prometheus metrics at /metrics on the HTTP endpoint.</summary>
public sealed class SidecarMetrics
{
    public Histogram QueueSeconds { get; } = Metrics.CreateHistogram("unlearnable_queue_seconds", "Time a post waited before its batch started",
        new HistogramConfiguration { Buckets = Histogram.ExponentialBuckets(0.001, 2, 16) });
    public Histogram OptimiseSeconds { get; } = Metrics.CreateHistogram("unlearnable_optimise_seconds", "Time one batch spent in MEM",
        new HistogramConfiguration { Buckets = Histogram.ExponentialBuckets(0.01, 2, 14) });
    public Histogram BatchSize { get; } = Metrics.CreateHistogram("unlearnable_batch_size", "Posts per batch (without anchor padding)",
        new HistogramConfiguration { Buckets = Histogram.LinearBuckets(1, 1, 32) });
    public Gauge QueueDepth { get; } = Metrics.CreateGauge("unlearnable_queue_depth", "Posts waiting for a batch");
    public Counter Rejected { get; } = Metrics.CreateCounter("unlearnable_posts_refused_total",
        "Posts refused for load, by reason: queue_full, pixel_budget, in_flight (server or API-key share), user_share, draining",
        new CounterConfiguration { LabelNames = ["reason"] });
    public Counter Posts { get; } = Metrics.CreateCounter("unlearnable_posts_total", "Posts answered, by gRPC status", new CounterConfiguration { LabelNames = ["status"] });
}
