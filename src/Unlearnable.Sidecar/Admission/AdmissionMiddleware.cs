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
public sealed class AdmissionMiddleware(RequestDelegate next, AdmissionControl admission, PostMemory memory, Observability.SidecarMetrics metrics,
    Microsoft.Extensions.Options.IOptions<SidecarOptions> options)
{
    public const string ProtectPath = "/unlearnable.v1.ProtectionService/Protect";

    public async Task InvokeAsync(HttpContext context)
    {
        if (!IsProtect(context))
        {
            await next(context);
            return;
        }
        // After ApiKeyMiddleware, which decided the call's tenant from its key.
        var tenant = ApiKeyMiddleware.TenantOf(context)!;
        using var slot = admission.TryEnter(tenant, out var refusal);
        if (slot is null)
        {
            await GrpcRefusal.WriteAsync(context, admission.Draining ? StatusCode.Unavailable : StatusCode.ResourceExhausted, refusal);
            return;
        }
        var limits = options.Value.Limits;
        if (await UnaryBody.BufferAsync(context, limits.BodyReadTimeout, limits.MaxMessageBytes, memory, tenant, metrics)) await next(context);
    }

    // Decided on the endpoint routing chose, not the raw path: a path that routing maps to Protect another way
    // (".../Protect/") would otherwise reach the service without a slot.
    static bool IsProtect(HttpContext context) => GrpcRefusal.RoutedMethod(context)?.FullName == ProtectPath;
}
