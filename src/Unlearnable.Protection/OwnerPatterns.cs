using Unlearnable.Data;
using static TorchSharp.torch;

namespace Unlearnable.Protection;

/// <summary>
/// The owners' shared patterns for the in-process paths (dataset-level MEM, posts), on disk in a
/// <see cref="NoiseStore"/> with one row per owner (whole 1/255 steps, like the noise), so memory
/// and time per batch follow the batch's owners, not how many people the data set has.
/// </summary>
public sealed class OwnerPatterns : IDisposable
{
    readonly NoiseStore _rows;
    readonly int[] _rowOf;

    OwnerPatterns(NoiseStore rows, int[] rowOf) => (_rows, _rowOf) = (rows, rowOf);

    /// <summary>Null when the options give owners no share or no image has an owner.</summary>
    public static OwnerPatterns? Open(IReadOnlyList<CaptionedImage> items, ProtectionOptions options, string path, int size)
    {
        var names = items.Select(i => i.Owner).OfType<string>().Distinct().ToList();
        if (options.UserBound <= 0 || names.Count == 0) return null;
        var index = names.Select((name, row) => (name, row)).ToDictionary(p => p.name, p => p.row);
        return new OwnerPatterns(NoiseStore.OpenOrCreate(path, names.Count, size), items.Select(i => i.Owner is null ? -1 : index[i.Owner]).ToArray());
    }

    /// <summary>The patterns of these images' owners only, ready for one batch (null when none has an owner); hand it to <see cref="Keep"/> afterwards.</summary>
    public UserNoise? ForBatch(IReadOnlyList<int> members, Device device, double bound)
    {
        var rows = members.Select(i => _rowOf[i]).Where(r => r >= 0).Distinct().ToList();
        if (rows.Count == 0) return null;
        using var patterns = _rows.Read(rows, device);
        return new UserNoise(patterns, members.Select(i => rows.IndexOf(_rowOf[i])).ToList(), bound) { Rows = rows };
    }

    public void Keep(UserNoise users) => _rows.Write(users.Rows, users.Patterns);

    public void Flush() => _rows.Flush();

    public void Dispose() => _rows.Dispose();
}
