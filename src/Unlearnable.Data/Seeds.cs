namespace Unlearnable.Data;

/// <summary>
/// Deterministic seed mixing (SplitMix64). HashCode.Combine is randomised per process, so it
/// must not be used where results have to repeat across runs.
/// </summary>
public static class Seeds
{
    public static int Mix(params long[] parts)
    {
        ulong x = 0x9E3779B97F4A7C15;
        foreach (var p in parts)
        {
            x += (ulong)p + 0x9E3779B97F4A7C15;
            x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9;
            x = (x ^ (x >> 27)) * 0x94D049BB133111EB;
            x ^= x >> 31;
        }
        return (int)(x & 0x7FFFFFFF);
    }
}
