using Prometheus;

namespace Unlearnable.Sidecar.Observability;

/// <summary>
/// Prometheus metrics at /metrics on the HTTP endpoint, shaped as inference servers' are (Triton,
/// TorchServe), so their dashboards' ideas carry over: requests by status (posts_total), posts
/// computed vs batches executed (batched_posts_total / batch_executions_total, Triton's inference
/// vs execution count), queue time, compute time (optimise) and the codec time around it.
/// </summary>
public sealed class SidecarMetrics
{
    public Histogram QueueSeconds { get; } = Metrics.CreateHistogram("unlearnable_queue_seconds", "Time a post waited before its batch started",
        new HistogramConfiguration { Buckets = Histogram.ExponentialBuckets(0.001, 2, 16) });
    public Histogram OptimiseSeconds { get; } = Metrics.CreateHistogram("unlearnable_optimise_seconds", "Time one batch spent in MEM",
        new HistogramConfiguration { Buckets = Histogram.ExponentialBuckets(0.01, 2, 14) });
    public Histogram BatchSize { get; } = Metrics.CreateHistogram("unlearnable_batch_size", "Posts per batch (without anchor padding)",
        new HistogramConfiguration { Buckets = Histogram.LinearBuckets(1, 1, 32) });
    public Gauge QueueDepth { get; } = Metrics.CreateGauge("unlearnable_queue_depth", "Posts waiting for a batch");
    public Counter BatchExecutions { get; } = Metrics.CreateCounter("unlearnable_batch_executions_total", "Batches the model ran (anchor padding not counted as posts)");
    public Counter BatchedPosts { get; } = Metrics.CreateCounter("unlearnable_batched_posts_total", "Posts that went through a batch (posts / batches = mean batch size)");
    public Histogram CodecSeconds { get; } = Metrics.CreateHistogram("unlearnable_codec_seconds",
        "Time a post spent in its own pipeline's image work, off the model's thread: decode (with preprocessing) or finish (noise to full resolution, encode, verify)",
        new HistogramConfiguration { LabelNames = ["stage"], Buckets = Histogram.ExponentialBuckets(0.001, 2, 16) });
    public Counter Rejected { get; } = Metrics.CreateCounter("unlearnable_posts_refused_total",
        "Posts refused for load, by reason: queue_full, bulk_queue_full, queue_timeout, memory, in_flight (server, tenant or streams' share), user_share, draining",
        new CounterConfiguration { LabelNames = ["reason"] });
    public Gauge Threads { get; } = Metrics.CreateGauge("unlearnable_threads",
        "Threads the server works with, by pool: torch (libtorch's CPU threads) and codec (posts decoded or finished at once); both follow the cores the container gets",
        new GaugeConfiguration { LabelNames = ["pool"] });
    public Counter Posts { get; } = Metrics.CreateCounter("unlearnable_posts_total", "Posts answered, by gRPC status", new CounterConfiguration { LabelNames = ["status"] });
}
