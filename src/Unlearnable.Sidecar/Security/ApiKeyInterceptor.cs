using System.Security.Cryptography;
using System.Text;
using Grpc.Core;
using Grpc.Core.Interceptors;

namespace Unlearnable.Sidecar.Security;

/// <summary>
/// Requires an "x-api-key" header matching one of the configured keys (compared in constant
/// time) on the protection service. Health and reflection stay open for probes and tooling.
/// </summary>
public sealed class ApiKeyInterceptor(ApiKeyPolicy policy) : Interceptor
{
    public const string Header = "x-api-key";

    void Check(ServerCallContext context)
    {
        if (!policy.Required) return;
        var presented = context.RequestHeaders.GetValue(Header);
        if (presented is null || !policy.Keys.Any(k => CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(k), Encoding.UTF8.GetBytes(presented))))
            throw new RpcException(new Status(StatusCode.Unauthenticated, presented is null
                ? $"this server requires an API key in the '{Header}' header"
                : $"the API key in the '{Header}' header is not valid"));
    }

    public override Task<TResponse> UnaryServerHandler<TRequest, TResponse>(TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation)
    {
        Check(context);
        return continuation(request, context);
    }

    public override Task DuplexStreamingServerHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream, IServerStreamWriter<TResponse> responseStream,
        ServerCallContext context, DuplexStreamingServerMethod<TRequest, TResponse> continuation)
    {
        Check(context);
        return continuation(requestStream, responseStream, context);
    }
}

/// <summary>Whether keys are required (by default everywhere but Development) and which are accepted.</summary>
public sealed record ApiKeyPolicy(bool Required, IReadOnlyList<string> Keys)
{
    public static ApiKeyPolicy From(AuthOptions auth, bool development)
    {
        bool required = auth.RequireApiKey ?? !development;
        var keys = auth.ApiKeys.Where(k => !string.IsNullOrWhiteSpace(k)).ToList();
        if (required && keys.Count == 0)
            throw new InvalidOperationException("API keys are required (outside Development by default) but Sidecar:Auth:ApiKeys is empty: " +
                "set Sidecar__Auth__ApiKeys__0 in the environment, or Sidecar:Auth:RequireApiKey=false on a trusted network");
        return new ApiKeyPolicy(required, keys);
    }
}
