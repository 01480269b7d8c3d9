using Unlearnable.Data;
using Unlearnable.Imaging;

namespace Unlearnable.Protection;

/// <summary>Per-image outcome of publishing a protected pair.</summary>
public sealed record ProtectedImageReport(string Id, bool Protected, int LInfinity, double Psnr, IReadOnlyList<string> Triggers, IReadOnlyList<int[]> TriggerIds,
    OutputFormat? Format = null);

/// <summary>
/// Turns a protection result into what would be published: images with the noise applied at full
/// resolution, encoded within the bound (<see cref="BoundedEncoder"/>; by default in the original's
/// format, a JPEG keeping its own tables, anything else PNG) and captions prefixed with their
/// triggers. With a fraction below 1, only that share of the images (chosen by seed) is protected
/// and the rest pass through untouched.
/// </summary>
public static class ProtectedDataset
{
    /// <param name="epsilon">The noise bound the result was made with, in [0, 1] pixel units.</param>
    /// <param name="output">The answer encoding for every image; null keeps each original's format.</param>
    public static (List<CaptionedImage> Items, List<ProtectedImageReport> Reports) Build(
        IReadOnlyList<CaptionedImage> items, ProtectionResult result, double epsilon, double fraction = 1.0, int seed = 0, ImageLimits? limits = null,
        OutputEncoding? output = null)
    {
        int bound = (int)Math.Floor(epsilon * 255 + 1e-6);
        if (fraction is < 0 or > 1) throw new ArgumentOutOfRangeException(nameof(fraction), fraction, "the protected fraction must be in [0, 1]");
        var rng = new Random(Seeds.For(SeedStream.ProtectedShare, seed));
        var chosen = Enumerable.Range(0, items.Count).OrderBy(_ => rng.Next()).Take((int)Math.Round(fraction * items.Count)).ToHashSet();
        var publishedItems = new CaptionedImage[items.Count];
        var reports = new ProtectedImageReport[items.Count];
        Parallel.For(0, items.Count, i =>
        {
            var item = items[i];
            if (!chosen.Contains(i))
            {
                publishedItems[i] = item;
                reports[i] = new ProtectedImageReport(item.Id, false, 0, double.PositiveInfinity, [], []);
                return;
            }
            var bytes = item.Image.ReadBytes();
            using var original = SafeImageDecoder.Decode(bytes, limits, item.Image.Name);
            using var perturbed = NoiseMapping.Apply(original, result.Noise.ReadRaw(i), result.Noise.ImageSize);
            var encoding = output ?? new OutputEncoding(ImageFormats.Sniff(bytes) ?? OutputFormat.Png);
            var published = BoundedEncoder.Encode(original, perturbed, encoding, bound, bytes);   // measured on what is published
            var triggers = result.Triggers is null ? [] : item.Captions.Select((_, c) => result.Triggers.Get(i, c)).ToList();
            var captions = result.Triggers is null ? item.Captions : item.Captions.Select((c, k) => TriggeredCaptions.Publish(triggers[k], c)).ToList();
            publishedItems[i] = item with { Image = new MemoryImage(item.Id, published.Bytes), Captions = captions };
            reports[i] = new ProtectedImageReport(item.Id, true, published.LInfinity, published.Psnr,
                triggers.Select(t => Clip.Text.ClipTokenizer.Default.Decode(t)).ToList(), triggers, published.Format);
        });
        return (publishedItems.ToList(), reports.ToList());
    }
}
