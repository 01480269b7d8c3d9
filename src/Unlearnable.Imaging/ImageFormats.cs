namespace Unlearnable.Imaging;

/// <summary>What an encoded image is, from its first bytes, and the file extension it is written with.</summary>
public static class ImageFormats
{
    /// <summary>JPEG, PNG or WebP (any WebP: its answer is lossless WebP); null for anything else.</summary>
    public static OutputFormat? Sniff(ReadOnlySpan<byte> b) =>
        b.Length >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF ? OutputFormat.Jpeg
        : b.Length >= 8 && b[..8].SequenceEqual((ReadOnlySpan<byte>)[0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) ? OutputFormat.Png
        : b.Length >= 12 && b[..4].SequenceEqual("RIFF"u8) && b.Slice(8, 4).SequenceEqual("WEBP"u8) ? OutputFormat.WebpLossless
        : null;

    public static string Extension(OutputFormat format) => format switch
    {
        OutputFormat.Jpeg => ".jpg",
        OutputFormat.WebpLossless => ".webp",
        _ => ".png",
    };
}
