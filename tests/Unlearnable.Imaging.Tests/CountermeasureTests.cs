using SkiaSharp;
using Unlearnable.Data.Synthetic;
using Unlearnable.Data.Synthetic.Faces;
using Unlearnable.Imaging;

namespace Unlearnable.Imaging.Tests;

public class CountermeasureTests
{
    // A face photo plus ±8/255 checkerboard noise: the high-frequency pattern countermeasures aim at.
    static SKBitmap Noisy()
    {
        var photo = SyntheticIdentities.Photo(3, 1, 0, 64);
        var pixels = photo.GetPixelSpan();
        for (int y = 0; y < 64; y++)
            for (int x = 0; x < 64; x++)
                for (int c = 0; c < 3; c++)
                {
                    int p = (y * 64 + x) * 4 + c;
                    pixels[p] = (byte)Math.Clamp(pixels[p] + ((x + y) % 2 == 0 ? 8 : -8), 0, 255);
                }
        return photo;
    }

    // Mean absolute difference between horizontal neighbours: high for the checkerboard, low once it is washed out.
    static double Roughness(SKBitmap b) => Enumerable.Range(0, 64).SelectMany(y => Enumerable.Range(0, 63).Select(x =>
        Math.Abs(b.GetPixel(x, y).Green - b.GetPixel(x + 1, y).Green))).Average();

    [Theory]
    [InlineData("rescale:0.5")]
    [InlineData("blur:1.5")]
    public void EachCountermeasureKeepsTheSizeAndWashesOutPixelNoise(string spec)
    {
        using var input = Noisy();
        using var output = Countermeasure.Parse(spec).Apply(input);
        Assert.Equal((64, 64), (output.Width, output.Height));
        Assert.True(Roughness(output) < 0.7 * Roughness(input), $"{spec}: roughness {Roughness(output):F1} vs {Roughness(input):F1}");
    }

    [Fact]
    public void JpegReEncodingIsLossyButClose()
    {
        using var input = Noisy();
        using var q90 = Countermeasure.Parse("jpeg:90").Apply(input);
        using var q50 = Countermeasure.Parse("jpeg:50").Apply(input);
        double Error(SKBitmap b) => Enumerable.Range(0, 64 * 64).Average(i => Math.Abs(b.GetPixel(i % 64, i / 64).Red - input.GetPixel(i % 64, i / 64).Red));
        Assert.InRange(Error(q90), 0.5, 12);
        Assert.True(Error(q50) > Error(q90), $"quality 50 error {Error(q50):F2} should exceed quality 90's {Error(q90):F2}");
    }

    [Fact]
    public void GrayscaleLeavesEqualChannels()
    {
        using var input = Noisy();
        using var output = Countermeasure.Parse("grayscale").Apply(input);
        for (int i = 0; i < 64; i += 7)
        {
            var c = output.GetPixel(i, 63 - i);
            Assert.Equal(c.Red, c.Green);
            Assert.Equal(c.Green, c.Blue);
        }
    }

    [Theory]
    [InlineData("jpeg:0", "JPEG quality")]
    [InlineData("rescale:2", "downscale factor")]
    [InlineData("sharpen:3", "unknown countermeasure")]
    [InlineData("blur", "blur sigma")]
    public void BadSpecsAreRefusedWithTheReason(string spec, string expected)
    {
        Assert.Contains(expected, Assert.Throws<ArgumentException>(() => Countermeasure.Parse(spec)).Message);
    }

    [Fact]
    public void PlatformShrinksALargePhotoTo1080AndReEncodesASmallOne()
    {
        using var large = PhonePhoto.Render(4000, 3000, seed: 1);
        using var published = Countermeasure.Parse("platform").Apply(large);
        Assert.Equal((1080, 810), (published.Width, published.Height));

        using var input = Noisy();
        using var small = Countermeasure.Parse("platform").Apply(input);
        Assert.Equal((64, 64), (small.Width, small.Height));
        Assert.InRange(PixelDifference.LInfinity(input, small), 1, 80);
        Assert.Equal("platform", Countermeasure.Parse("Platform").ToString());
        Assert.Contains("unknown countermeasure", Assert.Throws<ArgumentException>(() => Countermeasure.Parse("platform:3")).Message);
    }

    [Fact]
    public void SpecsRoundTrip() => Assert.Equal("jpeg:75", Countermeasure.Parse("JPEG:75").ToString());
}
