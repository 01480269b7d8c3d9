using System.Net;
using System.Net.Sockets;

namespace Unlearnable.Tests;

/// <summary>Free loopback ports for the real servers the test projects start (compiled into each of them).</summary>
static class LoopbackPorts
{
    public static int Free()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
