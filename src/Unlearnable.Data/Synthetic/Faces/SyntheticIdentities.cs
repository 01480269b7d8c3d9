using SkiaSharp;
using Unlearnable.Data.Formats;

namespace Unlearnable.Data.Synthetic.Faces;

/// <summary>
/// A deterministic stand-in for a face data set (none is reachable offline): each identity is a
/// fixed <see cref="FaceIdentity"/> drawn from (seed, identity index), and photo n of it adds a
/// <see cref="FaceVariation"/> drawn from (seed, identity, n). The same seed gives the same
/// pixels in any process.
/// </summary>
public static class SyntheticIdentities
{
    public static FaceIdentity Person(int seed, int identity) => FaceIdentity.Draw(new Random(Seeds.For(SeedStream.SyntheticPerson, seed, identity)));

    public static SKBitmap Photo(int seed, int identity, int photo, int size)
    {
        var rng = new Random(Seeds.For(SeedStream.SyntheticPhoto, seed, identity, photo));
        return FaceRenderer.Render(Person(seed, identity), FaceVariation.Draw(rng), size, rng);
    }

    /// <summary>Writes <paramref name="root"/>/person-NNN/NN.png, the layout <see cref="IdentityFolders"/> reads.</summary>
    public static IReadOnlyList<Identity> Write(string root, int identities, int photosPerIdentity, int seed, int size = 64)
    {
        if (identities < 1) throw new ArgumentOutOfRangeException(nameof(identities), identities, "at least one identity is needed");
        if (photosPerIdentity < 2) throw new ArgumentOutOfRangeException(nameof(photosPerIdentity), photosPerIdentity, "at least two photos per identity are needed (one is held out)");
        if (size < 16) throw new ArgumentOutOfRangeException(nameof(size), size, "faces need at least 16 pixels");
        Parallel.For(0, identities, i =>
        {
            var folder = Path.Combine(root, $"person-{i:D3}");
            Directory.CreateDirectory(folder);
            for (int n = 0; n < photosPerIdentity; n++)
            {
                using var photo = Photo(seed, i, n, size);
                using var image = SKImage.FromBitmap(photo);
                using var png = image.Encode(SKEncodedImageFormat.Png, 100);
                File.WriteAllBytes(Path.Combine(folder, $"{n:D2}.png"), png.ToArray());
            }
        });
        return IdentityFolders.Load(root);
    }
}
