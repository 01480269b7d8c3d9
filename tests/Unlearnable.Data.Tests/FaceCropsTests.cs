using SkiaSharp;
using Unlearnable.Data.Formats;
using Unlearnable.Data.Synthetic.Faces;
using Unlearnable.Imaging;

namespace Unlearnable.Data.Tests;

public class FaceCropsTests
{
    /// <summary>A 250 × 250 photo (LFW's size) with a bright square in its centre on a dark, noisy background.</summary>
    static byte[] NewsPhoto(int seed, int width = 250, int height = 250)
    {
        var rng = new Random(seed);
        using var bitmap = new SKBitmap(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Unpremul));
        var p = bitmap.GetPixelSpan();
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
            {
                bool face = Math.Abs(x - width / 2) < 50 && Math.Abs(y - height / 2) < 50;
                int i = 4 * (y * width + x);
                p[i] = p[i + 1] = p[i + 2] = (byte)(face ? 220 : 30 + rng.Next(40));
                p[i + 3] = 255;
            }
        return ImageEncoding.Jpeg(bitmap, 92);
    }

    [Fact]
    public void PeopleAreChosenByPhotoCountAndEachPhotoKeepsItsCentralSquare()
    {
        var source = TestFolders.New();
        foreach (var (person, count) in new[] { ("Few_Photos", 3), ("Dev_Person", 12), ("Kept_Apart", 25) })
        {
            Directory.CreateDirectory(Path.Combine(source, person));
            for (int n = 0; n < count; n++) File.WriteAllBytes(Path.Combine(source, person, $"{person}_{n:D4}.jpg"), NewsPhoto(n));
        }
        File.WriteAllBytes(Path.Combine(source, "Dev_Person", ".MATLABDriveTag"), [1, 2]);   // hidden files are not photos
        var output = TestFolders.New();
        var (people, photos) = FaceCrops.Write(IdentityFolders.Load(source), output, minPhotos: 10, maxPhotos: 19, crop: 150);
        Assert.Equal((1, 12), (people, photos));
        Assert.Equal(["Dev_Person"], Directory.GetDirectories(output).Select(Path.GetFileName));
        foreach (var file in Directory.GetFiles(Path.Combine(output, "Dev_Person")))
        {
            using var crop = SafeImageDecoder.Decode(File.ReadAllBytes(file));
            Assert.Equal((150, 150), (crop.Width, crop.Height));
            // The bright centre (100 px of 250) is now 100 px of 150: the crop's centre is bright and its corners dark.
            Assert.InRange(crop.GetPixel(75, 75).Red, 200, 240);
            Assert.InRange(crop.GetPixel(3, 3).Red, 0, 90);
            Assert.InRange(crop.GetPixel(30, 30).Red, 200, 240);   // the source's (80, 80): inside its bright square (76–174)
            Assert.InRange(crop.GetPixel(20, 20).Red, 0, 90);      // the source's (70, 70): outside it
        }
        // A photo smaller than the crop keeps the largest central square it has.
        using var small = SafeImageDecoder.Decode(NewsPhoto(1, 120, 90));
        using var square = FaceCrops.Central(small, 150);
        Assert.Equal((90, 90), (square.Width, square.Height));
        Assert.Throws<ArgumentOutOfRangeException>(() => FaceCrops.Write([], TestFolders.New(), minPhotos: 5, maxPhotos: 4, crop: 150));
        // A pool is never written over another one.
        Assert.Throws<IOException>(() => FaceCrops.Write(IdentityFolders.Load(source), output, minPhotos: 1, maxPhotos: 9, crop: 150));
    }
}
