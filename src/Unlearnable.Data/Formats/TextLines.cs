using System.Text;

namespace Unlearnable.Data.Formats;

/// <summary>Reads a text file as strict UTF-8, numbered lines; invalid bytes are an error naming the line.</summary>
static class TextLines
{
    static readonly UTF8Encoding Strict = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    public static IEnumerable<(int Number, string Text)> Read(string path)
    {
        if (!File.Exists(path)) throw new DataFormatException(path, 0, "file does not exist");
        var bytes = File.ReadAllBytes(path);
        int start = bytes.Length >= 3 && bytes[0] == 0xEF && bytes[1] == 0xBB && bytes[2] == 0xBF ? 3 : 0;
        int number = 0;
        while (start < bytes.Length)
        {
            int end = Array.IndexOf(bytes, (byte)'\n', start);
            if (end < 0) end = bytes.Length;
            number++;
            string text;
            try { text = Strict.GetString(bytes, start, end - start).TrimEnd('\r'); }
            catch (DecoderFallbackException) { throw new DataFormatException(path, number, "line is not valid UTF-8"); }
            yield return (number, text);
            start = end + 1;
        }
    }

    public static string ReadAll(string path)
    {
        if (!File.Exists(path)) throw new DataFormatException(path, 0, "file does not exist");
        try { return Strict.GetString(File.ReadAllBytes(path)); }
        catch (DecoderFallbackException) { throw new DataFormatException(path, 0, "file is not valid UTF-8"); }
    }
}

static class Captions
{
    /// <summary>A caption must have visible text; whitespace is collapsed.</summary>
    public static string Check(string? caption, string file, int line)
    {
        if (caption is null) throw new DataFormatException(file, line, "caption is missing");
        var text = string.Join(' ', caption.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries));
        if (text.Length == 0) throw new DataFormatException(file, line, "caption is empty");
        return text;
    }

    public static Split ParseSplit(string? value, string file, int line) => value?.ToLowerInvariant() switch
    {
        "train" or "restval" => Split.Train,
        "val" or "dev" => Split.Val,
        "test" => Split.Test,
        _ => throw new DataFormatException(file, line, $"split '{value}' is not train, val or test"),
    };
}
