using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;
using Grpc.Net.Client.Configuration;
using Polly;
using Polly.CircuitBreaker;
using Unlearnable.Contracts.V1;

namespace Unlearnable.ClientSample;

/// <summary>
/// What a photo-sharing backend puts in front of the sidecar. Calls are balanced per call over
/// every replica (round_robin; give the headless Service as <c>dns:///unlearnable-sidecar-headless.unlearnable:5051</c>, plain HTTP/2 inside the cluster:
/// a ClusterIP Service balances connections, and a channel keeps its one connection for life).
/// gRPC's own retry policy retries UNAVAILABLE and RESOURCE_EXHAUSTED with backoff, on the next
/// replica (safe: a repeated post_id returns the stored result instead of a second perturbation),
/// with a retry buffer large enough for photos (gRPC's default, 1 MB a call, would not retry most
/// of them); a Polly pipeline adds a per-call timeout and a circuit breaker, so a sick sidecar
/// fails posts fast instead of piling them up.
/// </summary>
public sealed class SidecarClient : IDisposable
{
    readonly GrpcChannel _channel;
    readonly ProtectionService.ProtectionServiceClient _client;
    readonly Metadata _headers = [];
    readonly ResiliencePipeline _pipeline;

    /// <param name="address">http(s)://host:port, or dns:///host:port to balance over every address the name resolves to.</param>
    /// <param name="services">Resolver factories for other address schemes (e.g. static:/// in tests).</param>
    public SidecarClient(string address, string? apiKey, TimeSpan? timeout = null, IServiceProvider? services = null)
    {
        var retry = new MethodConfig
        {
            Names = { MethodName.Default },
            RetryPolicy = new RetryPolicy
            {
                MaxAttempts = 4, InitialBackoff = TimeSpan.FromMilliseconds(200), MaxBackoff = TimeSpan.FromSeconds(3), BackoffMultiplier = 2,
                RetryableStatusCodes = { StatusCode.Unavailable, StatusCode.ResourceExhausted },
            },
        };
        bool plain = !address.StartsWith("https://", StringComparison.OrdinalIgnoreCase);
        _channel = GrpcChannel.ForAddress(address, new GrpcChannelOptions
        {
            ServiceConfig = new ServiceConfig { LoadBalancingConfigs = { new RoundRobinConfig() }, MethodConfigs = { retry } },
            MaxReceiveMessageSize = 64 << 20, MaxSendMessageSize = 64 << 20,
            MaxRetryBufferPerCallSize = 48 << 20, MaxRetryBufferSize = 256 << 20,   // a photo of up to 48 MB is kept to be sent again
            Credentials = plain ? ChannelCredentials.Insecure : ChannelCredentials.SecureSsl,
            ServiceProvider = services,
        });
        _client = new ProtectionService.ProtectionServiceClient(_channel);
        if (!string.IsNullOrEmpty(apiKey)) _headers.Add("x-api-key", apiKey);
        _pipeline = new ResiliencePipelineBuilder()
            .AddCircuitBreaker(new CircuitBreakerStrategyOptions
            {
                FailureRatio = 0.5, MinimumThroughput = 8, SamplingDuration = TimeSpan.FromSeconds(30), BreakDuration = TimeSpan.FromSeconds(15),
                ShouldHandle = new PredicateBuilder().Handle<RpcException>(e => e.StatusCode is StatusCode.Unavailable or StatusCode.Internal or StatusCode.DeadlineExceeded),
            })
            .AddTimeout(timeout ?? TimeSpan.FromMinutes(2))
            .Build();
    }

    /// <summary>The "protect before publish" call: the backend publishes what comes back, never the original.</summary>
    public Task<ProtectResponse> ProtectBeforePublishAsync(string userId, string postId, byte[] image, string caption, ProtectOptions? options = null,
        CancellationToken cancel = default) =>
        _pipeline.ExecuteAsync(async token => await _client.ProtectAsync(new ProtectRequest
        {
            UserId = userId, PostId = postId, Image = ByteString.CopyFrom(image), Caption = caption, Options = options ?? new ProtectOptions(),
        }, _headers, cancellationToken: token), cancel).AsTask();

    /// <summary>A user's session on one stream: posts go out as they come, answers come back as they finish (any order).</summary>
    public async IAsyncEnumerable<ProtectResponse> ProtectSessionAsync(string userId, IEnumerable<(string PostId, byte[] Image, string Caption)> posts,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancel = default)
    {
        using var call = _client.ProtectStream(_headers, cancellationToken: cancel);
        var sending = Task.Run(async () =>
        {
            foreach (var (postId, image, caption) in posts)
                await call.RequestStream.WriteAsync(new ProtectRequest { UserId = userId, PostId = postId, Image = ByteString.CopyFrom(image), Caption = caption }, cancel);
            await call.RequestStream.CompleteAsync();
        }, cancel);
        await foreach (var response in call.ResponseStream.ReadAllAsync(cancel)) yield return response;
        await sending;
    }

    public ProtectionService.ProtectionServiceClient Raw => _client;
    public Metadata Headers => _headers;

    public void Dispose() => _channel.Dispose();
}
