using System.Buffers.Binary;
using Grpc.Core;
using Unlearnable.Hosting;

namespace Unlearnable.Sidecar.Admission;

/// <summary>
/// Reads a unary post's body once it holds an admission slot: within <see cref="LimitOptions.BodyReadTimeout"/>, so a
/// client that trickles its body cannot keep a slot for hours, and within <see cref="PostMemory"/>. The gRPC frame header
/// says the message's length, so the memory is counted (the buffer and gRPC's parsed copy, until the call ends) or the
/// post refused before the body is read, and the body is read into one buffer of that size (no growing copies). A
/// message over the size limit is left to gRPC, which refuses it from the header with its own message.
/// </summary>
public static class UnaryBody
{
    const int FrameHeader = 5;

    /// <returns>False when the post was refused (no memory for it, or its body did not arrive in time); it has then been answered.</returns>
    public static async Task<bool> BufferAsync(HttpContext context, TimeSpan limit, long maxMessageBytes, PostMemory memory, string tenant,
        Observability.SidecarMetrics metrics)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted);
        if (limit > TimeSpan.Zero) timeout.CancelAfter(limit);
        var body = context.Request.Body;
        try
        {
            var header = new byte[FrameHeader];
            int got = await ReadUpTo(body, header, timeout.Token);
            long length = got == FrameHeader ? BinaryPrimitives.ReadUInt32BigEndian(header.AsSpan(1)) : 0;
            if (got < FrameHeader || length > maxMessageBytes)
            {
                context.Request.Body = new PrefixedStream(header[..got], body);   // gRPC answers a short or oversized frame itself
                return true;
            }
            long bytes = 2 * (FrameHeader + length);
            if (memory.TryHold(tenant, bytes) is not { } held)
            {
                metrics.Rejected.WithLabels("memory").Inc();
                await GrpcRefusal.WriteAsync(context, StatusCode.ResourceExhausted, memory.Refusal(tenant, "its body", bytes));
                return false;
            }
            context.Response.RegisterForDispose(held);
            var message = new byte[FrameHeader + length];
            header.CopyTo(message, 0);
            got = await ReadUpTo(body, message.AsMemory(FrameHeader), timeout.Token);
            // Anything after the one message (or a body that ends early) is gRPC's to refuse; the end itself must arrive in time too.
            var after = new byte[1];
            int extra = got == length ? await ReadUpTo(body, after, timeout.Token) : 0;
            context.Request.Body = new PrefixedStream(message.AsMemory(0, FrameHeader + got), extra == 0 ? Stream.Null : new PrefixedStream(after, body));
            return true;
        }
        catch (OperationCanceledException) when (!context.RequestAborted.IsCancellationRequested)
        {
            await GrpcRefusal.WriteAsync(context, StatusCode.DeadlineExceeded,
                $"the post's body did not arrive within {limit.TotalSeconds:0.#} s (Sidecar:Limits:BodyReadTimeout); send it faster, or retry on a better connection");
            return false;
        }
    }

    static async Task<int> ReadUpTo(Stream stream, Memory<byte> buffer, CancellationToken cancel)
    {
        int total = 0;
        while (total < buffer.Length)
        {
            int read = await stream.ReadAsync(buffer[total..], cancel);
            if (read == 0) break;
            total += read;
        }
        return total;
    }

    /// <summary>Bytes already read, then the rest of the body.</summary>
    sealed class PrefixedStream(ReadOnlyMemory<byte> prefix, Stream rest) : Stream
    {
        int _at;

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancel = default)
        {
            if (_at < prefix.Length)
            {
                int count = Math.Min(buffer.Length, prefix.Length - _at);
                prefix.Slice(_at, count).CopyTo(buffer);
                _at += count;
                return count;
            }
            return await rest.ReadAsync(buffer, cancel);
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancel) => ReadAsync(buffer.AsMemory(offset, count), cancel).AsTask();
        public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer, offset, count, CancellationToken.None).GetAwaiter().GetResult();
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
