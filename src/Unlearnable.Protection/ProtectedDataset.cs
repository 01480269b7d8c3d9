using Unlearnable.Data;
using Unlearnable.Imaging;

namespace Unlearnable.Protection;

/// <summary>Per-image outcome of publishing a protected pair.</summary>
public sealed record ProtectedImageReport(string Id, bool Protected, int LInfinity, double Psnr, IReadOnlyList<string> Triggers, IReadOnlyList<int[]> TriggerIds);

/// <summary>
/// Turns a protection result into what would be published: PNG images with the noise applied at
/// full resolution and captions prefixed with their triggers. With a fraction below 1, only that
/// share of the images (chosen by seed) is protected and the rest pass through untouched.
/// </summary>
public static class ProtectedDataset
{
    public static (List<CaptionedImage> Items, List<ProtectedImageReport> Reports) Build(
        IReadOnlyList<CaptionedImage> items, ProtectionResult result, double fraction = 1.0, int seed = 0, ImageLimits? limits = null)
    {
        if (fraction is < 0 or > 1) throw new ArgumentOutOfRangeException(nameof(fraction), fraction, "the protected fraction must be in [0, 1]");
        var rng = new Random(Seeds.Mix(seed, 0xf4ac));
        var chosen = Enumerable.Range(0, items.Count).OrderBy(_ => rng.Next()).Take((int)Math.Round(fraction * items.Count)).ToHashSet();
        var output = new CaptionedImage[items.Count];
        var reports = new ProtectedImageReport[items.Count];
        Parallel.For(0, items.Count, i =>
        {
            var item = items[i];
            if (!chosen.Contains(i))
            {
                output[i] = item;
                reports[i] = new ProtectedImageReport(item.Id, false, 0, double.PositiveInfinity, [], []);
                return;
            }
            using var original = SafeImageDecoder.Decode(item.Image.ReadBytes(), limits, item.Image.Name);
            using var perturbed = NoiseMapping.Apply(original, result.Noise.ReadRaw(i), result.Noise.ImageSize);
            var png = ImageEncoding.Png(perturbed);
            using var decoded = SafeImageDecoder.Decode(png);   // measure what is published, not the float tensor
            var triggers = result.Triggers is null ? [] : item.Captions.Select((_, c) => result.Triggers.Get(i, c)).ToList();
            var captions = result.Triggers is null ? item.Captions : item.Captions.Select((c, k) => TriggeredCaptions.Publish(triggers[k], c)).ToList();
            output[i] = item with { Image = new MemoryImage(item.Id, png), Captions = captions };
            var (lInfinity, psnr) = PixelDifference.Compare(original, decoded);
            reports[i] = new ProtectedImageReport(item.Id, true, lInfinity, psnr,
                triggers.Select(t => Clip.Text.ClipTokenizer.Default.Decode(t)).ToList(), triggers);
        });
        return (output.ToList(), reports.ToList());
    }
}
