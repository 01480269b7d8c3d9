using Grpc.Core;
using Unlearnable.Sidecar.Admission;
using Unlearnable.Sidecar.Batching;

namespace Unlearnable.Sidecar.Services;

/// <summary>
/// Turns what went wrong in a call (or in one post of a stream) into the gRPC status a client
/// can act on, with a message that says what was wrong; an RpcException stays as it is, since
/// its trailers may carry rich error details. One mapping for the unary calls
/// (<see cref="CallStatusInterceptor"/>) and for each post of a stream.
/// </summary>
public static class StatusMapping
{
    public static RpcException ToRpc(Exception e, ServerCallContext context, ILogger log)
    {
        if (e is RpcException rpc) return rpc;
        var status = e switch
        {
            QueueTimeoutException late => new Status(StatusCode.DeadlineExceeded, late.Message),
            QueueFullException full => new Status(StatusCode.ResourceExhausted, full.Message),
            ServerDrainingException draining => new Status(StatusCode.Unavailable, draining.Message),
            OperationCanceledException when context.Deadline <= DateTime.UtcNow => new Status(StatusCode.DeadlineExceeded, "the deadline passed before the post was protected"),
            OperationCanceledException => new Status(StatusCode.Cancelled, "the call was cancelled; the post left its batch"),
            _ => new Status(StatusCode.Internal, "protection failed inside the server; see its logs"),
        };
        if (status.StatusCode == StatusCode.Internal) log.LogError(e, "Unexpected failure in {Method}", context.Method);
        return new RpcException(status);
    }
}
