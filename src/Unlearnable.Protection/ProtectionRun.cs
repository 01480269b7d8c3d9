using System.Text.Json;
using Unlearnable.Clip.Text;

namespace Unlearnable.Protection;

/// <summary>Where a dataset-level run is: saved after every batch so an interrupted run loses nothing.</summary>
/// <param name="MembersTrained">Of an ensemble, the members whose surrogate steps this round are done and saved (a resumed run trains the rest).</param>
/// <param name="Surrogates">An ensemble's members' architectures, in order (null for one surrogate): resumed with other ones, their saved
/// surrogates would be loaded into the wrong models.</param>
public sealed record ProtectionRunState(int Round, bool SurrogateDone, int NextBatch, List<double> RoundLosses, bool Finished, string OptionsJson,
    int MembersTrained = 0, string? Surrogates = null)
{
    public static string PathIn(string workDir) => Path.Combine(workDir, "state.json");

    public void Save(string workDir) => AtomicWrite(PathIn(workDir), JsonSerializer.Serialize(this));

    public static ProtectionRunState? Load(string workDir) =>
        File.Exists(PathIn(workDir)) ? JsonSerializer.Deserialize<ProtectionRunState>(File.ReadAllText(PathIn(workDir))) : null;

    internal static void AtomicWrite(string path, string text)
    {
        File.WriteAllText(path + ".tmp", text);
        File.Move(path + ".tmp", path, overwrite: true);
    }
}

/// <summary>One trigger (k token ids) per caption, or one per image, addressed by (image, caption), persisted as a flat int32 file.</summary>
public sealed class TriggerTable
{
    readonly int[] _offsets;   // first caption slot of each image
    readonly int[] _ids;

    public int Length { get; }

    /// <summary>Whether all captions of an image share one trigger (so the image's one δ has one trigger to bind to).</summary>
    public bool PerImage { get; }

    public TriggerTable(IReadOnlyList<int> captionsPerImage, int length, int initialToken, bool perImage = false)
    {
        Length = length;
        PerImage = perImage;
        if (perImage) captionsPerImage = captionsPerImage.Select(_ => 1).ToList();
        _offsets = new int[captionsPerImage.Count + 1];
        for (int i = 0; i < captionsPerImage.Count; i++) _offsets[i + 1] = _offsets[i] + captionsPerImage[i];
        _ids = Enumerable.Repeat(initialToken, _offsets[^1] * length).ToArray();
    }

    /// <summary>"the" × k, the authors' starting trigger.</summary>
    public static int TheToken => ClipTokenizer.Default.EncodeRaw("the")[0];

    public int[] Get(int image, int caption) => _ids.AsSpan(Slot(image, caption) * Length, Length).ToArray();

    int Slot(int image, int caption) => _offsets[image] + (PerImage ? 0 : caption);

    public void Set(int image, int caption, int[] trigger)
    {
        if (trigger.Length != Length) throw new ArgumentException($"trigger must have {Length} tokens");
        trigger.CopyTo(_ids, Slot(image, caption) * Length);
    }

    public void Save(string path)
    {
        var bytes = new byte[_ids.Length * sizeof(int)];
        Buffer.BlockCopy(_ids, 0, bytes, 0, bytes.Length);
        File.WriteAllBytes(path + ".tmp", bytes);
        File.Move(path + ".tmp", path, overwrite: true);
    }

    public void Load(string path)
    {
        var bytes = File.ReadAllBytes(path);
        if (bytes.Length != _ids.Length * sizeof(int)) throw new InvalidDataException($"{path} holds triggers for a different data set or length");
        Buffer.BlockCopy(bytes, 0, _ids, 0, bytes.Length);
    }
}
