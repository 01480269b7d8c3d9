using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace Unlearnable.Sidecar.Admission;

/// <summary>
/// Open connections capped per listener rather than for the whole server: clients on the gRPC listener (HTTP/2) share
/// <see cref="LimitOptions.MaxConnections"/>, while the HTTP listener (HTTP/1: /healthz for probes, /metrics for
/// Prometheus) has its own <see cref="LimitOptions.MaxProbeConnections"/>, so a full gRPC listener (busy clients, or
/// keyless health watchers that never end) never turns the kubelet's probes and the scrapes away. A connection over its
/// listener's cap is closed at once.
/// </summary>
public static class ConnectionCaps
{
    public static void Apply(ListenOptions listen, LimitOptions limits) =>
        listen.Use(next =>
        {
            // Built when the listener binds, after its protocols were read from its configuration.
            int cap = listen.Protocols == HttpProtocols.Http1 ? limits.MaxProbeConnections : limits.MaxConnections;
            int open = 0;
            return async connection =>
            {
                if (Interlocked.Increment(ref open) > cap)
                {
                    Interlocked.Decrement(ref open);
                    connection.Abort(new ConnectionAbortedException($"the listener's {cap} connections are in use"));
                    return;
                }
                try { await next(connection); }
                finally { Interlocked.Decrement(ref open); }
            };
        });
}
