using SkiaSharp;
using Unlearnable.Imaging;

namespace Unlearnable.Data.Formats;

/// <summary>
/// Prepares a face set from photo collections laid out as identity folders (LFW): the people with a given number of
/// photos (LFW's pools: under 10 photos for pre-training, 10–19 for development, 20 or more kept for independent
/// checks) and each photo's central square, where aligned collections put the face, as PubFig's crops are. At a
/// model's 64 pixels a whole 250-pixel news photo leaves the face about 28 pixels wide; its central 150 pixels leave 45.
/// </summary>
public static class FaceCrops
{
    public const int Quality = 95;

    /// <summary>Writes the chosen people's crops as JPEG identity folders; returns how many people and photos were written.</summary>
    /// <param name="crop">The side of the central square kept, in pixels (a photo smaller than that keeps its central square as large as it has).</param>
    public static (int People, int Photos) Write(IReadOnlyList<Identity> people, string outDir, int minPhotos, int maxPhotos, int crop)
    {
        if (minPhotos < 1 || maxPhotos < minPhotos) throw new ArgumentOutOfRangeException(nameof(maxPhotos), $"photos per person must satisfy 1 ≤ min ({minPhotos}) ≤ max ({maxPhotos})");
        if (crop < 8) throw new ArgumentOutOfRangeException(nameof(crop), crop, "the crop must be at least 8 pixels");
        // A pool written over another (a wrong --max-photos corrected) would mix people from both: start from an empty folder.
        if (Directory.Exists(outDir) && Directory.EnumerateFileSystemEntries(outDir).Any())
            throw new IOException($"{outDir} is not empty; write a pool into a new or empty folder");
        var chosen = people.Where(p => p.Images.Count >= minPhotos && p.Images.Count <= maxPhotos).ToList();
        int photos = 0;
        foreach (var person in chosen)
        {
            var folder = Path.Combine(outDir, person.Name);
            Directory.CreateDirectory(folder);
            foreach (var image in person.Images)
            {
                using var photo = SafeImageDecoder.Decode(image.ReadBytes(), what: image.Name);
                using var square = Central(photo, crop);
                var target = Path.Combine(folder, Path.GetFileNameWithoutExtension(image.Name) + ".jpg");
                if (File.Exists(target)) throw new IOException($"{image.Name} and another photo of {person.Name} would both be written as {target}");
                File.WriteAllBytes(target, ImageEncoding.Jpeg(square, Quality));
                photos++;
            }
        }
        return (chosen.Count, photos);
    }

    public static SKBitmap Central(SKBitmap photo, int crop)
    {
        int side = Math.Min(crop, Math.Min(photo.Width, photo.Height));
        using var view = new SKBitmap();   // shares the photo's pixels; the copy owns its own
        if (!photo.ExtractSubset(view, SKRectI.Create((photo.Width - side) / 2, (photo.Height - side) / 2, side, side)))
            throw new InvalidOperationException("the central square could not be cut from the photo");
        return RgbaCopy.Of(view);
    }
}
