using System.Security.Cryptography;
using System.Text;
using Grpc.Core;
using Grpc.Core.Interceptors;

namespace Unlearnable.Hosting;

/// <summary>
/// Requires an "x-api-key" header matching one of the configured keys (compared in constant
/// time, over fixed-length hashes so no key's length leaks) on the services it is added to.
/// Health and reflection stay open for probes and tooling.
/// </summary>
public sealed class ApiKeyInterceptor(ApiKeyPolicy policy) : Interceptor
{
    public const string Header = "x-api-key";

    void Check(ServerCallContext context)
    {
        if (policy.Refusal(context.RequestHeaders.GetValue(Header)) is { } refusal)
            throw new RpcException(new Status(StatusCode.Unauthenticated, refusal));
    }

    public override Task<TResponse> UnaryServerHandler<TRequest, TResponse>(TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation)
    {
        Check(context);
        return continuation(request, context);
    }

    public override Task ServerStreamingServerHandler<TRequest, TResponse>(TRequest request, IServerStreamWriter<TResponse> responseStream,
        ServerCallContext context, ServerStreamingServerMethod<TRequest, TResponse> continuation)
    {
        Check(context);
        return continuation(request, responseStream, context);
    }

    public override Task<TResponse> ClientStreamingServerHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream, ServerCallContext context,
        ClientStreamingServerMethod<TRequest, TResponse> continuation)
    {
        Check(context);
        return continuation(requestStream, context);
    }

    public override Task DuplexStreamingServerHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream, IServerStreamWriter<TResponse> responseStream,
        ServerCallContext context, DuplexStreamingServerMethod<TRequest, TResponse> continuation)
    {
        Check(context);
        return continuation(requestStream, responseStream, context);
    }
}

/// <summary>The "Auth" part of a host's configuration section.</summary>
public sealed class AuthOptions
{
    /// <summary>Accepted keys, sent as the "x-api-key" header. Keep them in environment variables or a secret store.</summary>
    public List<string> ApiKeys { get; set; } = [];
    /// <summary>null = required outside the Development environment.</summary>
    public bool? RequireApiKey { get; set; }
}

/// <summary>Whether keys are required (by default everywhere but Development) and which are accepted.</summary>
public sealed class ApiKeyPolicy
{
    readonly byte[][] _hashes;

    ApiKeyPolicy(bool required, IEnumerable<string> keys)
    {
        Required = required;
        _hashes = [.. keys.Select(Hash)];
    }

    public bool Required { get; }

    /// <summary>What a call to a keyless service (health, reflection) may send: their requests are a few bytes.</summary>
    public const int KeylessMessageBytes = 16 << 10;

    /// <summary>Why a call presenting this key (or none) is refused, or null when it may go on.</summary>
    public string? Refusal(string? presented) =>
        !Required ? null
        : string.IsNullOrEmpty(presented) ? $"this server requires an API key in the '{ApiKeyInterceptor.Header}' header"
        : !Accepts(presented) ? $"the API key in the '{ApiKeyInterceptor.Header}' header is not valid"
        : null;

    /// <summary>Compares SHA-256 digests in constant time: equal lengths whatever the key, so the comparison leaks neither content nor length.</summary>
    public bool Accepts(string presented)
    {
        var hash = Hash(presented);
        bool any = false;
        foreach (var known in _hashes) any |= CryptographicOperations.FixedTimeEquals(known, hash);
        return any;
    }

    static byte[] Hash(string key) => SHA256.HashData(Encoding.UTF8.GetBytes(key));

    /// <param name="section">The configuration section, for messages (e.g. "Sidecar" → Sidecar:Auth:ApiKeys).</param>
    public static ApiKeyPolicy From(AuthOptions auth, bool development, string section)
    {
        bool required = auth.RequireApiKey ?? !development;
        var keys = auth.ApiKeys.Where(k => !string.IsNullOrWhiteSpace(k)).ToList();
        if (required && keys.Count == 0)
            throw new InvalidOperationException($"API keys are required (outside Development by default) but {section}:Auth:ApiKeys is empty: " +
                $"set {section}__Auth__ApiKeys__0 in the environment, or {section}:Auth:RequireApiKey=false on a trusted network");
        return new ApiKeyPolicy(required, keys);
    }
}
