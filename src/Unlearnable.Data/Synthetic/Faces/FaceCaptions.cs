using Unlearnable.Data.Formats;

namespace Unlearnable.Data.Synthetic.Faces;

/// <summary>
/// Turns identity folders into the face-privacy study's image–caption set (paper §4.5): every
/// person gets an invented name (real names are never used, the folder name is dropped), each
/// photo gets captions from templates ("a photo of NAME", "NAME at the beach", ...), and one
/// photo per person — the last — is held out as the test split, so retrieval between faces and
/// names is measured on photos the model never saw.
/// </summary>
public static class FaceCaptions
{
    static readonly string[] Templates =
    [
        "a photo of {0}", "{0} at the beach", "a portrait of {0}", "{0} smiling at the camera", "{0} at a party",
        "a picture of {0} outdoors", "{0} in the office", "a close-up of {0}", "{0} on holiday", "a selfie of {0}",
    ];

    static readonly string[] First =
    [
        "Alvaro", "Brina", "Corin", "Dalia", "Emrys", "Fenna", "Galen", "Hollis", "Ilse", "Joren", "Kaela", "Lucan", "Maelis", "Niven",
        "Orla", "Pascal", "Quilla", "Rowan", "Saoirse", "Tobin", "Ulla", "Vesper", "Wren", "Xavi", "Yara", "Zeno",
    ];

    static readonly string[] Last =
    [
        "Ashdown", "Brevik", "Castellan", "Dunmore", "Ellery", "Falkner", "Greaves", "Halloran", "Ingram", "Jessup", "Kerrigan", "Lindqvist",
        "Marlow", "Northcott", "Ormsby", "Pennington", "Quarry", "Radcliffe", "Stanwick", "Thorne", "Underhill", "Vance", "Whitlock", "Yardley",
    ];

    /// <summary>Distinct invented names, one per identity, the same for the same seed.</summary>
    public static IReadOnlyList<string> InventNames(int count, int seed)
    {
        if (count > First.Length * Last.Length) throw new ArgumentOutOfRangeException(nameof(count), count, $"at most {First.Length * Last.Length} names can be invented");
        var rng = new Random(Seeds.For(SeedStream.FaceNames, seed));
        return Enumerable.Range(0, First.Length * Last.Length).OrderBy(_ => rng.Next()).Take(count)
            .Select(i => $"{First[i % First.Length]} {Last[i / First.Length]}").ToList();
    }

    /// <summary>
    /// Public photos of people, captioned as the web captions them: under their own names (the folder name, underscores
    /// as spaces, as LFW names its folders), a few templates per photo, every photo in the training split. For pre-training
    /// a public model that has seen faces; never for the people an evaluation holds out.
    /// </summary>
    public static CaptionDataset Named(IReadOnlyList<Identity> people, int seed, int captionsPerPhoto = 3)
    {
        var items = new List<CaptionedImage>();
        for (int p = 0; p < people.Count; p++)
        {
            var rng = new Random(Seeds.For(SeedStream.PublicPhotoCaptions, seed, p));
            string name = people[p].Name.Replace('_', ' ').Trim();
            for (int n = 0; n < people[p].Images.Count; n++)
            {
                var captions = Templates.OrderBy(_ => rng.Next()).Take(captionsPerPhoto).Select(t => string.Format(System.Globalization.CultureInfo.InvariantCulture, t, name)).ToList();
                items.Add(new CaptionedImage($"named{p:D5}-{n:D2}", people[p].Images[n], captions, Split.Train, Owner: $"named{p:D5}"));
            }
        }
        return new CaptionDataset("named faces", items, [$"{people.Count} people under their own names, {items.Count} photos"]);
    }

    public static CaptionDataset Build(IReadOnlyList<Identity> people, int seed, int captionsPerPhoto = 5)
    {
        if (people.Any(p => p.Images.Count < 2))
            throw new ArgumentException($"every identity needs at least 2 photos (one is held out): {people.First(p => p.Images.Count < 2).Name} has {people.First(p => p.Images.Count < 2).Images.Count}");
        var names = InventNames(people.Count, seed);
        var items = new List<CaptionedImage>();
        for (int p = 0; p < people.Count; p++)
        {
            var rng = new Random(Seeds.For(SeedStream.IdentityCaptions, seed, p));
            for (int n = 0; n < people[p].Images.Count; n++)
            {
                var captions = Templates.OrderBy(_ => rng.Next()).Take(captionsPerPhoto).Select(t => string.Format(System.Globalization.CultureInfo.InvariantCulture, t, names[p])).ToList();
                var split = n == people[p].Images.Count - 1 ? Split.Test : Split.Train;
                items.Add(new CaptionedImage($"id{p:D3}-{n:D2}", people[p].Images[n], captions, split, Owner: $"id{p:D3}"));
            }
        }
        return new CaptionDataset("faces", items, [$"{people.Count} identities renamed with invented names; the last photo of each is the test split"]);
    }
}
