namespace Unlearnable.Sidecar.Tests;

/// <summary>A slow-loris body: a gRPC frame header announcing 1 MB, then a byte every 100 ms until stopped.</summary>
sealed class TrickledBody : HttpContent
{
    readonly CancellationToken stop;

    public TrickledBody(CancellationToken stop)
    {
        this.stop = stop;
        Headers.ContentType = new("application/grpc");
    }

    protected override async Task SerializeToStreamAsync(Stream stream, System.Net.TransportContext? context)
    {
        await stream.WriteAsync(new byte[] { 0, 0, 0x10, 0, 0 }, stop);
        try
        {
            while (!stop.IsCancellationRequested)
            {
                await stream.WriteAsync(new byte[] { 0x0a }, stop);
                await stream.FlushAsync(stop);
                await Task.Delay(100, stop);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or IOException) { }   // stopped, or the server reset the stream
    }

    protected override bool TryComputeLength(out long length) { length = 0; return false; }
}
