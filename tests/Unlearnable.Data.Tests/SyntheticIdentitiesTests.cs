using SkiaSharp;
using Unlearnable.Data.Formats;
using Unlearnable.Data.Synthetic.Faces;

namespace Unlearnable.Data.Tests;

public class SyntheticIdentitiesTests
{
    static string Temp() => TestFolders.New();

    [Fact]
    public void TheSameSeedWritesTheSameIdentityFoldersInAnyRun()
    {
        var a = SyntheticIdentities.Write(Temp(), identities: 3, photosPerIdentity: 4, seed: 9, size: 48);
        var b = SyntheticIdentities.Write(Temp(), identities: 3, photosPerIdentity: 4, seed: 9, size: 48);
        var c = SyntheticIdentities.Write(Temp(), identities: 3, photosPerIdentity: 4, seed: 10, size: 48);
        Assert.Equal(["person-000", "person-001", "person-002"], a.Select(i => i.Name));
        Assert.All(a, i => Assert.Equal(4, i.Images.Count));
        var bytesA = a.SelectMany(i => i.Images).Select(x => x.ReadBytes()).ToList();
        Assert.Equal(bytesA, b.SelectMany(i => i.Images).Select(x => x.ReadBytes()));
        Assert.NotEqual(bytesA, c.SelectMany(i => i.Images).Select(x => x.ReadBytes()));
    }

    [Fact]
    public void PhotosOfOnePersonResembleEachOtherMoreThanOtherPeople()
    {
        // Compare the face region after removing each photo's mean colour (light and background vary by design).
        const int people = 8, photos = 5, size = 64;
        var faces = Enumerable.Range(0, people).Select(p => Enumerable.Range(0, photos).Select(n => Centre(SyntheticIdentities.Photo(1, p, n, size))).ToList()).ToList();
        double within = 0, between = 0;
        int withinPairs = 0, betweenPairs = 0;
        for (int p = 0; p < people; p++)
            for (int q = p; q < people; q++)
                for (int i = 0; i < photos; i++)
                    for (int j = 0; j < photos; j++)
                    {
                        if (p == q && j <= i) continue;
                        double d = faces[p][i].Zip(faces[q][j], (x, y) => Math.Abs(x - y)).Average();
                        if (p == q) { within += d; withinPairs++; } else { between += d; betweenPairs++; }
                    }
        Assert.True(within / withinPairs < 0.8 * (between / betweenPairs), $"within {within / withinPairs:F1} vs between {between / betweenPairs:F1}");
    }

    [Theory]
    [InlineData(0, 4, 64, "identity")]
    [InlineData(3, 1, 64, "two photos")]
    [InlineData(3, 4, 8, "16 pixels")]
    public void BadSizesAreRefused(int identities, int photos, int size, string expected)
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => SyntheticIdentities.Write(Temp(), identities, photos, 0, size));
        Assert.Contains(expected, e.Message);
    }

    static double[] Centre(SKBitmap photo)
    {
        using (photo)
        {
            int s = photo.Width, from = s / 4, to = 3 * s / 4;
            var values = new List<double>();
            for (int y = from; y < to; y++)
                for (int x = from; x < to; x++)
                {
                    var c = photo.GetPixel(x, y);
                    values.AddRange([c.Red, c.Green, c.Blue]);
                }
            double mean = values.Average();
            return values.Select(v => v - mean).ToArray();
        }
    }

    [Fact]
    public void FaceCaptionsUseInventedNamesAndHoldOutOnePhotoPerPerson()
    {
        var people = SyntheticIdentities.Write(Temp(), identities: 4, photosPerIdentity: 3, seed: 2, size: 32);
        var data = FaceCaptions.Build(people, seed: 5);
        var names = FaceCaptions.InventNames(4, 5);
        Assert.Equal(4, names.Distinct().Count());
        Assert.Equal(4, data.Of(Split.Test).Count);
        Assert.Equal(8, data.Of(Split.Train).Count);
        for (int p = 0; p < 4; p++)
        {
            var photos = data.Items.Where(i => i.Id.StartsWith($"id{p:D3}-", StringComparison.Ordinal)).ToList();
            Assert.All(photos, i => Assert.All(i.Captions, c => Assert.Contains(names[p], c)));
            Assert.All(photos, i => Assert.All(i.Captions, c => Assert.DoesNotContain("person-", c)));
            Assert.Equal(Split.Test, photos[^1].Split);
            Assert.Equal(5, photos[0].Captions.Distinct().Count());
        }
        Assert.Equal(names, FaceCaptions.InventNames(4, 5));
        Assert.Throws<ArgumentException>(() => FaceCaptions.Build([new Identity("solo", [people[0].Images[0]])], 0));
    }

    [Fact]
    public void PublicFacesAreCaptionedUnderTheirOwnNamesAndAllTrainedOn()
    {
        var photo = new MemoryImage("x", []);
        var data = FaceCaptions.Named([new Identity("Ada_Lovelace", [photo, photo]), new Identity("Grace_Hopper", [photo])], seed: 3);
        Assert.Equal(3, data.Items.Count);
        Assert.All(data.Items, i => Assert.Equal(Split.Train, i.Split));   // a person with one photo teaches too: nothing is held out
        Assert.All(data.Items.Take(2), i => Assert.All(i.Captions, c => Assert.Contains("Ada Lovelace", c)));
        Assert.All(data.Items[2].Captions, c => Assert.Contains("Grace Hopper", c));
        Assert.All(data.Items, i => Assert.Equal(3, i.Captions.Distinct().Count()));
        Assert.Equal(data.Items.Select(i => i.Captions), FaceCaptions.Named([new Identity("Ada_Lovelace", [photo, photo]), new Identity("Grace_Hopper", [photo])], seed: 3).Items.Select(i => i.Captions));
    }
}
