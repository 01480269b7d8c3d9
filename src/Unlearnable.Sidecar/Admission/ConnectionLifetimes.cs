using System.Collections.Concurrent;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace Unlearnable.Sidecar.Admission;

/// <summary>
/// The gRPC listener's open connections, so they can be asked to go: each at <see cref="LimitOptions.MaxConnectionAge"/>
/// (± 10 %, so reconnects spread out), and all at once when the server starts draining. Asking sends HTTP/2 GOAWAY: calls
/// in flight finish on the old connection, new ones open a new one — with a headless Service and round_robin, to whichever
/// replicas exist now. Without it a client channel stays on the replica it first reached for its whole life, so replicas
/// the autoscaler adds get nothing, and a draining replica keeps receiving posts it can only refuse.
/// </summary>
public sealed class ConnectionLifetimes
{
    readonly ConcurrentDictionary<string, ConnectionContext> _open = new();

    /// <summary>Client connections open now.</summary>
    public int Count => _open.Count;

    public void Apply(ListenOptions listen, LimitOptions limits) =>
        listen.Use(next =>
        {
            if (listen.Protocols == HttpProtocols.Http1) return next;   // probes and scrapes: short requests, not balanced
            return async connection =>
            {
                _open[connection.ConnectionId] = connection;
                var age = limits.MaxConnectionAge;
                using var retire = age > TimeSpan.Zero ? new Timer(_ => Close(connection), null, age * (0.9 + 0.2 * Random.Shared.NextDouble()), Timeout.InfiniteTimeSpan) : null;
                try { await next(connection); }
                finally { _open.TryRemove(connection.ConnectionId, out _); }
            };
        });

    /// <summary>
    /// Asks every open connection to go (the server drains); returns how many. A client that connects again while the
    /// server drains is not sent away at once (GOAWAY before its first call fails that call as INTERNAL): its posts are
    /// answered UNAVAILABLE, which the client samples retry on another replica.
    /// </summary>
    public int CloseAll()
    {
        var open = _open.Values.ToList();
        foreach (var connection in open) Close(connection);
        return open.Count;
    }

    static void Close(ConnectionContext connection) => connection.Features.Get<IConnectionLifetimeNotificationFeature>()?.RequestClose();
}
