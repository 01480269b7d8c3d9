using Grpc.Core;
using Grpc.Core.Interceptors;
using Unlearnable.Sidecar.Observability;

namespace Unlearnable.Sidecar.Services;

/// <summary>
/// Cross-cutting work every unary call shares, kept out of the service's methods: failures become
/// statuses (<see cref="StatusMapping"/>), and each unary post is counted under its status
/// (streamed posts are counted one by one by the stream, which answers each post itself).
/// </summary>
public sealed class CallStatusInterceptor(SidecarMetrics metrics, ILogger<CallStatusInterceptor> log) : Interceptor
{
    public override async Task<TResponse> UnaryServerHandler<TRequest, TResponse>(TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation)
    {
        bool post = context.Method.EndsWith("/Protect", StringComparison.Ordinal);
        try
        {
            var response = await continuation(request, context);
            if (post) metrics.Posts.WithLabels("OK").Inc();
            return response;
        }
        catch (Exception e)
        {
            var rpc = StatusMapping.ToRpc(e, context, log);
            if (post) metrics.Posts.WithLabels(rpc.StatusCode.ToString()).Inc();
            if (ReferenceEquals(rpc, e)) throw;
            throw rpc;
        }
    }

    public override async Task DuplexStreamingServerHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requests, IServerStreamWriter<TResponse> responses,
        ServerCallContext context, DuplexStreamingServerMethod<TRequest, TResponse> continuation)
    {
        try { await continuation(requests, responses, context); }
        catch (Exception e) when (e is not RpcException) { throw StatusMapping.ToRpc(e, context, log); }
    }
}
