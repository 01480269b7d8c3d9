using Grpc.Core;
using Microsoft.AspNetCore.Http;

namespace Unlearnable.Hosting;

/// <summary>
/// Checks a call's API key before anything of it is read or counted: a call to a keyed service without a valid key
/// is answered UNAUTHENTICATED from its headers, so a keyless client can neither make the server buffer a body nor
/// hold an admission slot (the interceptor, which runs once the body is parsed, stays as the second check).
/// Registered after routing, so it sees which service a path leads to however the path is written.
/// </summary>
public sealed class ApiKeyMiddleware(RequestDelegate next, ApiKeyPolicy policy, KeyedServices keyed)
{
    public async Task InvokeAsync(HttpContext context)
    {
        if (GrpcRefusal.RoutedMethod(context) is { } method && keyed.Names.Contains(method.ServiceName)
            && policy.Refusal(context.Request.Headers[ApiKeyInterceptor.Header]) is { } refusal)
        {
            await GrpcRefusal.WriteAsync(context, StatusCode.Unauthenticated, refusal);
            return;
        }
        await next(context);
    }
}

/// <summary>The gRPC services (full names, e.g. "unlearnable.v1.ProtectionService") whose every call needs a key.</summary>
public sealed record KeyedServices(params string[] Names);
