using Grpc.Core;
using Microsoft.AspNetCore.Http;

namespace Unlearnable.Hosting;

/// <summary>
/// Checks a call's API key before anything of it is read or counted: a call to a keyed service without a valid key
/// is answered UNAUTHENTICATED from its headers, so a keyless client can neither make the server buffer a body nor
/// hold an admission slot (the interceptor, which runs once the body is parsed, checks again only where this middleware
/// is not in the pipeline).
/// Registered after routing, so it sees which service a path leads to however the path is written. The call's tenant is
/// decided here, once, for what comes after it (<see cref="TenantOf"/>).
/// </summary>
public sealed class ApiKeyMiddleware(RequestDelegate next, ApiKeyPolicy policy, KeyedServices keyed)
{
    static readonly object TenantItem = new();

    public async Task InvokeAsync(HttpContext context)
    {
        if (GrpcRefusal.RoutedMethod(context) is { } method && keyed.Names.Contains(method.ServiceName))
        {
            string presented = context.Request.Headers[ApiKeyInterceptor.Header].ToString();
            if (policy.TenantOf(presented) is not { } tenant)
            {
                await GrpcRefusal.WriteAsync(context, StatusCode.Unauthenticated, policy.Refusal(presented)!);
                return;
            }
            context.Items[TenantItem] = tenant;
        }
        await next(context);
    }

    /// <summary>The tenant this middleware found for a keyed call's key, or null where it has not run.</summary>
    public static string? TenantOf(HttpContext context) => context.Items.TryGetValue(TenantItem, out var tenant) ? (string?)tenant : null;
}

/// <summary>The gRPC services (full names, e.g. "unlearnable.v1.ProtectionService") whose every call needs a key.</summary>
public sealed record KeyedServices(params string[] Names);
