using Grpc.Core;
using Unlearnable.Hosting;

namespace Unlearnable.Sidecar.Admission;

/// <summary>
/// Takes an admission slot for a unary Protect call before its body is read, or answers at once
/// (trailers only: RESOURCE_EXHAUSTED, or UNAVAILABLE while draining) without reading it. This
/// is middleware rather than a gRPC interceptor because interceptors run after the body has been
/// received and parsed, which is what admission must prevent. It runs after routing (which WebApplication puts
/// first), so it knows which method a request is for.
/// </summary>
public sealed class AdmissionMiddleware(RequestDelegate next, AdmissionControl admission)
{
    public const string ProtectPath = "/unlearnable.v1.ProtectionService/Protect";

    public async Task InvokeAsync(HttpContext context)
    {
        if (!IsProtect(context))
        {
            await next(context);
            return;
        }
        using var slot = admission.TryEnter(context.Request.Headers[ApiKeyInterceptor.Header].ToString(), out var refusal);
        if (slot is null)
        {
            var code = admission.Draining ? StatusCode.Unavailable : StatusCode.ResourceExhausted;
            context.Response.StatusCode = StatusCodes.Status200OK;
            context.Response.ContentType = "application/grpc";
            context.Response.Headers["grpc-status"] = ((int)code).ToString(System.Globalization.CultureInfo.InvariantCulture);
            context.Response.Headers["grpc-message"] = Uri.EscapeDataString(refusal);
            // Send the status, then reset the stream with NO_ERROR (as grpc-dotnet does when a call ends before its
            // request): the client stops sending the body, and Kestrel drops the DATA frames still on their way
            // instead of treating them as a protocol error that would end the whole connection.
            await context.Response.CompleteAsync();
            context.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpResetFeature>()?.Reset(0);
            return;
        }
        await next(context);
    }

    // Decided on the endpoint routing chose, not the raw path: a path that routing maps to Protect another way
    // (".../Protect/") would otherwise reach the service without a slot.
    static bool IsProtect(HttpContext context) =>
        context.GetEndpoint()?.Metadata.GetMetadata<Grpc.AspNetCore.Server.GrpcMethodMetadata>()?.Method.FullName == ProtectPath;
}
