using Grpc.Core;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace Unlearnable.Hosting;

/// <summary>Answers a gRPC call from HTTP middleware, before its body is read: trailers only, then the stream reset.</summary>
public static class GrpcRefusal
{
    public static async Task WriteAsync(HttpContext context, StatusCode code, string message)
    {
        context.Response.StatusCode = StatusCodes.Status200OK;
        context.Response.ContentType = "application/grpc";
        context.Response.Headers["grpc-status"] = ((int)code).ToString(System.Globalization.CultureInfo.InvariantCulture);
        context.Response.Headers["grpc-message"] = Uri.EscapeDataString(message);
        // Send the status, then reset the stream with NO_ERROR (as grpc-dotnet does when a call ends before its
        // request): the client stops sending the body, and Kestrel drops the DATA frames still on their way
        // instead of treating them as a protocol error that would end the whole connection.
        await context.Response.CompleteAsync();
        context.Features.Get<IHttpResetFeature>()?.Reset(0);
    }

    /// <summary>The gRPC method routing chose for this request, or null (not a gRPC call, or not routed).</summary>
    public static IMethod? RoutedMethod(HttpContext context) =>
        context.GetEndpoint()?.Metadata.GetMetadata<Grpc.AspNetCore.Server.GrpcMethodMetadata>()?.Method;
}
