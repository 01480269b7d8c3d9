namespace Unlearnable.Data;

/// <summary>
/// Deterministic seed mixing (SplitMix64). HashCode.Combine is randomised per process, so it
/// must not be used where results have to repeat across runs.
/// </summary>
public static class Seeds
{
    /// <summary>A seed for one stream's draws: <paramref name="parts"/> (seed, round, step…) mixed with the stream's salt.</summary>
    public static int For(SeedStream stream, params long[] parts) => Mix([.. parts, (long)stream]);

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

/// <summary>
/// The independent random streams of a run. Each draws from <see cref="Seeds.For"/>, so a new draw in one stream never
/// shifts another; the salts are the values recorded runs were made with, so they must not change.
/// </summary>
public enum SeedStream : long
{
    /// <summary>The trainer's shuffle of each epoch.</summary>
    TrainingOrder = 0x7a1,
    /// <summary>The hacker's augmentation of each step.</summary>
    Augmentation = 0xa09,
    /// <summary>One synthetic scene.</summary>
    SyntheticScene = 0x5ce7e,
    /// <summary>One synthetic person's looks, and one photo of them.</summary>
    SyntheticPerson = 0xface, SyntheticPhoto = 0x9407,
    /// <summary>Invented names; the captions of public named photos (per person); the captions of an identity set's photos (per person).</summary>
    FaceNames = 0x4a4e, PublicPhotoCaptions = 0x9a3e, IdentityCaptions = 0xca9,
    /// <summary>The platform transformation a PGD step sees.</summary>
    PlatformTransform = 0x7a11,
    /// <summary>Which images a run publishes protected (a fraction below 1).</summary>
    ProtectedShare = 0xf4ac,
    /// <summary>A dataset-level round: its batch order, each batch's captions, the surrogate's batches.</summary>
    RoundOrder = 0x9a55, BatchCaptions = 0xba7c, SurrogateBatches = 0x5a77,
    /// <summary>Table 1's random-noise baseline.</summary>
    RandomNoise = 0x7a2d,
    /// <summary>The recipe search's validation split.</summary>
    RecipeValidation = 0x5ea,
    /// <summary>Which pairs a poison-fraction arm protects.</summary>
    PoisonMix = 0x9015,
    /// <summary>The image-only probes' per-person patterns.</summary>
    PersonPattern = 0x9a77,
    /// <summary>A PGD step's input-diversity view, and the ensemble member a step follows when one is drawn per step.</summary>
    InputDiversity = 0xd1e5, EnsembleDraw = 0xe45b,
    /// <summary>A PGD step's skip-connection erosion (the surrogates' residual scales).</summary>
    SkipErosion = 0x9057,
    /// <summary>The batches a surrogate is adversarially fine-tuned on, and each batch's random start (<c>AdversarialHardening</c>).</summary>
    Hardening = 0xad5,
}
