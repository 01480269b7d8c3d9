using Microsoft.Extensions.Options;

namespace Unlearnable.Sidecar.Admission;

/// <summary>
/// One byte budget (<see cref="LimitOptions.PostMemoryBytes"/>) for what posts hold between admission and their written
/// answer: a unary body as its frame declares it (twice: the buffer and gRPC's parsed copy), a stream's message once read,
/// the decoded image while it waits for its batch (4 bytes a pixel), and the answer until it is written. What can still be
/// refused is refused when the budget is spent (<see cref="TryHold"/>); what is already done — a message read, an answer
/// made — is counted whatever the budget (<see cref="Count"/>), and holds new work back until it is let go.
/// Image work (decoding and finishing) has its own budget, <see cref="CodecMemory"/>.
/// </summary>
public sealed class PostMemory(IOptions<SidecarOptions> options)
{
    long _held;

    public long HeldBytes => Interlocked.Read(ref _held);
    public long Budget => options.Value.Limits.PostMemoryBytes;

    /// <summary>
    /// Holds <paramref name="bytes"/> unless the budget would be passed (null then); one post alone may pass it, so an
    /// image larger than the budget is still served when nothing else is held.
    /// </summary>
    public Hold? TryHold(long bytes)
    {
        long held = Interlocked.Add(ref _held, bytes);
        if (held > Budget && held > bytes)
        {
            Interlocked.Add(ref _held, -bytes);
            return null;
        }
        return new Hold(this, bytes);
    }

    /// <summary>Counts <paramref name="bytes"/> the server holds already; never refused.</summary>
    public Hold Count(long bytes)
    {
        Interlocked.Add(ref _held, bytes);
        return new Hold(this, bytes);
    }

    /// <summary>Why a post was refused, naming the setting.</summary>
    public string Refusal(string what, long bytes) =>
        $"posts in this server already hold {HeldBytes:N0} of the {Budget:N0} bytes of Sidecar:Limits:PostMemoryBytes; {what} needs {bytes:N0} more; retry later";

    public sealed class Hold(PostMemory owner, long bytes) : IDisposable
    {
        int _released;
        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0) Interlocked.Add(ref owner._held, -bytes);
        }
    }
}
