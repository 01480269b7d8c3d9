using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace Unlearnable.Tests;

/// <summary>
/// A host's two named endpoints (Kestrel:Endpoints:Grpc, HTTP/2, and :Http, HTTP/1) on loopback port 0, with the
/// ports Kestrel bound read back once it has started: no port is picked first and bound later, when another
/// process may have taken it.
/// </summary>
sealed class BoundEndpoints
{
    ListenOptions? _grpc, _http;

    public static IEnumerable<KeyValuePair<string, string?>> Settings =>
    [
        new("Kestrel:Endpoints:Grpc:Url", "http://127.0.0.1:0"), new("Kestrel:Endpoints:Grpc:Protocols", "Http2"),
        new("Kestrel:Endpoints:Http:Url", "http://127.0.0.1:0"), new("Kestrel:Endpoints:Http:Protocols", "Http1"),
    ];

    /// <summary>Remembers the two endpoints' listen options, which Kestrel updates with the bound port.</summary>
    public void Watch(WebApplicationBuilder builder) => builder.WebHost.ConfigureKestrel(kestrel => kestrel.ConfigurationLoader!
        .Endpoint("Grpc", endpoint => _grpc = endpoint.ListenOptions)
        .Endpoint("Http", endpoint => _http = endpoint.ListenOptions));

    public int GrpcPort => Port(_grpc, "Grpc");
    public int HttpPort => Port(_http, "Http");

    static int Port(ListenOptions? options, string name) => options?.EndPoint is IPEndPoint { Port: > 0 } bound
        ? bound.Port
        : throw new InvalidOperationException($"the {name} endpoint has not been bound yet");
}
