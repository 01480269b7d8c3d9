using Unlearnable.Imaging;

namespace Unlearnable.Data;

/// <summary>A data set as the hacker sees it after a countermeasure: every image transformed, stored losslessly in memory.</summary>
public static class Countermeasures
{
    public static IReadOnlyList<CaptionedImage> ApplyTo(IReadOnlyList<CaptionedImage> items, Countermeasure countermeasure)
    {
        var output = new CaptionedImage[items.Count];
        Parallel.For(0, items.Count, i =>
        {
            using var image = SafeImageDecoder.Decode(items[i].Image.ReadBytes(), what: items[i].Image.Name);
            using var washed = countermeasure.Apply(image);
            output[i] = items[i] with { Image = new MemoryImage(items[i].Id + "+" + countermeasure, ImageEncoding.Png(washed)) };
        });
        return output;
    }
}
