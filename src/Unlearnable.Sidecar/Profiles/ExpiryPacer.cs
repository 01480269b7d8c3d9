namespace Unlearnable.Sidecar.Profiles;

/// <summary>
/// Says when stored answers should be trimmed between the hourly sweeps: after an eighth of the
/// byte budget has been written, so a flood of large answers is held to the budget as it comes.
/// </summary>
public sealed class ExpiryPacer(long maxBytes)
{
    long _bytesSinceTrim;

    public bool Due(long bytes)
    {
        if (Interlocked.Add(ref _bytesSinceTrim, bytes) <= maxBytes / 8) return false;
        Interlocked.Exchange(ref _bytesSinceTrim, 0);
        return true;
    }
}
