using System.Security.Cryptography;
using System.Text;
using Grpc.Core;
using Grpc.Core.Interceptors;

namespace Unlearnable.Hosting;

/// <summary>
/// Requires an "x-api-key" header matching one of the configured keys (compared in constant
/// time, over fixed-length hashes so no key's length leaks) on the services it is added to.
/// Health and reflection stay open for probes and tooling. The call's tenant (<see cref="Tenant"/>) is kept for the service.
/// </summary>
public sealed class ApiKeyInterceptor(ApiKeyPolicy policy) : Interceptor
{
    public const string Header = "x-api-key";

    void Check(ServerCallContext context)
    {
        // Decided by ApiKeyMiddleware from the headers already; decided here where a host runs without it.
        var presented = context.RequestHeaders.GetValue(Header);
        context.UserState[TenantKey] = ApiKeyMiddleware.TenantOf(context.GetHttpContext()) ?? policy.TenantOf(presented)
            ?? throw new RpcException(new Status(StatusCode.Unauthenticated, policy.Refusal(presented)!));
    }

    static readonly object TenantKey = new();

    /// <summary>Whose the call is, as this interceptor found from its key (it runs first on every keyed service).</summary>
    public static string Tenant(ServerCallContext context) =>
        context.UserState.TryGetValue(TenantKey, out var tenant) ? (string)tenant
        : throw new InvalidOperationException("no tenant for this call: the service was registered without the API-key interceptor");

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
    /// <summary>
    /// Accepted keys, sent as the "x-api-key" header, each a tenant of its own. Keep them in environment variables or a
    /// secret store.
    /// </summary>
    public List<string> ApiKeys { get; set; } = [];
    /// <summary>
    /// Named tenants and their keys (several while one is rotated out): everything stored is the tenant's, whichever of
    /// its keys stored it. These keys are accepted too.
    /// </summary>
    public Dictionary<string, List<string>> Tenants { get; set; } = [];
    /// <summary>
    /// The tenant that owns what was stored before stores had tenants; empty = the only tenant, when there is one.
    /// </summary>
    public string? LegacyTenant { get; set; }
    /// <summary>null = required outside the Development environment.</summary>
    public bool? RequireApiKey { get; set; }
}

/// <summary>
/// Whether keys are required (by default everywhere but Development), which are accepted, and whose tenant each is.
/// A tenant is whose users, posts and jobs something is: a key sees and changes only its own tenant's.
/// </summary>
public sealed class ApiKeyPolicy
{
    readonly (byte[] Hash, string Tenant)[] _keys;

    ApiKeyPolicy(bool required, IEnumerable<(string Key, string Tenant)> keys, string? legacy)
    {
        Required = required;
        _keys = [.. keys.Select(k => (Hash(k.Key), k.Tenant))];
        Tenants = [.. _keys.Select(k => k.Tenant).Distinct().Order(StringComparer.Ordinal)];
        LegacyTenant = legacy;
    }

    public bool Required { get; }

    /// <summary>The configured tenants' names.</summary>
    public IReadOnlyList<string> Tenants { get; }

    /// <summary>The tenants that can store anything: the configured ones, and the open one where keys are not required.</summary>
    public int StoringTenants => Tenants.Count + (Required ? 0 : 1);

    /// <summary>Who owns what was stored before stores had tenants; null when the configuration does not say (several tenants).</summary>
    public string? LegacyTenant { get; }

    /// <summary>The tenant of calls without a key where none is required.</summary>
    public const string OpenTenant = "default";

    /// <summary>What a call to a keyless service (health, reflection) may send: their requests are a few bytes.</summary>
    public const int KeylessMessageBytes = 16 << 10;

    /// <summary>Why a call presenting this key (or none) is refused, or null when it may go on.</summary>
    public string? Refusal(string? presented) =>
        !Required ? null
        : string.IsNullOrEmpty(presented) ? $"this server requires an API key in the '{ApiKeyInterceptor.Header}' header"
        : TenantOf(presented) is null ? $"the API key in the '{ApiKeyInterceptor.Header}' header is not valid"
        : null;

    /// <summary>
    /// The tenant of a call presenting this key: the key's, or <see cref="OpenTenant"/> where keys are not required and
    /// none valid was sent; null for an invalid key where keys are required. Compares SHA-256 digests in constant time:
    /// every key is compared, at equal lengths whatever the key, so neither which key matched nor any length leaks.
    /// </summary>
    public string? TenantOf(string? presented)
    {
        string? found = null;
        if (!string.IsNullOrEmpty(presented))
        {
            var hash = Hash(presented);
            foreach (var (known, tenant) in _keys)
                if (CryptographicOperations.FixedTimeEquals(known, hash)) found = tenant;
        }
        return found ?? (Required ? null : OpenTenant);
    }

    static byte[] Hash(string key) => SHA256.HashData(Encoding.UTF8.GetBytes(key));

    /// <summary>The tenant of a key configured on its own: named by a short digest of the key, so stores never hold the key.</summary>
    public static string KeyTenant(string key) => "key-" + Convert.ToHexStringLower(Hash("unlearnable.tenant:" + key))[..12];

    /// <param name="section">The configuration section, for messages (e.g. "Sidecar" → Sidecar:Auth:ApiKeys).</param>
    public static ApiKeyPolicy From(AuthOptions auth, bool development, string section)
    {
        bool required = auth.RequireApiKey ?? !development;
        var keys = auth.ApiKeys.Where(k => !string.IsNullOrWhiteSpace(k)).Select(k => (Key: k, Tenant: KeyTenant(k))).ToList();
        foreach (var (tenant, tenantKeys) in auth.Tenants)
        {
            if (!ValidTenantName(tenant))
                throw new InvalidOperationException($"{section}:Auth:Tenants has a tenant named '{tenant}'; name tenants with 1 to 64 letters, digits, '.', '_' or '-', " +
                    $"not '{OpenTenant}' and not starting with 'key-' (those name keys' own tenants)");
            var named = tenantKeys.Where(k => !string.IsNullOrWhiteSpace(k)).ToList();
            if (named.Count == 0) throw new InvalidOperationException($"{section}:Auth:Tenants:{tenant} has no keys");
            keys.AddRange(named.Select(k => (k, tenant)));
        }
        var twice = keys.GroupBy(k => k.Key).FirstOrDefault(g => g.Count() > 1);
        if (twice is not null)
            throw new InvalidOperationException($"one key is listed {twice.Count()} times in {section}:Auth:ApiKeys and {section}:Auth:Tenants " +
                $"(tenants {string.Join(", ", twice.Select(k => k.Tenant).Distinct())}); a key belongs to one tenant");
        if (required && keys.Count == 0)
            throw new InvalidOperationException($"API keys are required (outside Development by default) but {section}:Auth:ApiKeys is empty: " +
                $"set {section}__Auth__ApiKeys__0 in the environment, or {section}:Auth:RequireApiKey=false on a trusted network");
        var tenants = keys.Select(k => k.Tenant).Distinct().ToList();
        string? legacy = string.IsNullOrWhiteSpace(auth.LegacyTenant) ? (tenants.Count == 1 ? tenants[0] : tenants.Count == 0 ? OpenTenant : null) : auth.LegacyTenant;
        if (legacy is not null && !tenants.Contains(legacy) && !(legacy == OpenTenant && !required))
            throw new InvalidOperationException($"{section}:Auth:LegacyTenant is '{legacy}', which is no configured tenant; name one of {string.Join(", ", tenants)}" +
                " (a key's own tenant is named key- and the first 12 hex digits of SHA-256 of 'unlearnable.tenant:' and the key)");
        return new ApiKeyPolicy(required, keys, legacy);
    }

    static bool ValidTenantName(string name) =>
        name.Length is >= 1 and <= 64 && name != OpenTenant && !name.StartsWith("key-", StringComparison.Ordinal)
        && name.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-');
}
