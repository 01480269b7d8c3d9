using System.IO.MemoryMappedFiles;
using static TorchSharp.torch;

namespace Unlearnable.Protection;

/// <summary>
/// One δ per image at model resolution, kept on disk in a memory-mapped file as signed bytes in
/// units of 1/255. PGD with α = 1/255 from zero on 8-bit images only visits multiples of 1/255,
/// so nothing is lost, the store is 4× smaller than float32, RAM holds only what is touched,
/// and an interrupted run finds its noise where it left it.
/// </summary>
public sealed class NoiseStore : IDisposable
{
    const long Magic = 0x31455349_4f4e4c55; // "ULNOISE1"
    const int HeaderBytes = 24;
    readonly MemoryMappedFile _file;
    readonly MemoryMappedViewAccessor _view;

    public int Count { get; }
    public int ImageSize { get; }
    public string Path { get; }
    int Plane => 3 * ImageSize * ImageSize;

    NoiseStore(string path, int count, int imageSize, MemoryMappedFile file)
    {
        Path = path;
        Count = count;
        ImageSize = imageSize;
        _file = file;
        _view = file.CreateViewAccessor();
    }

    /// <summary>Opens the store at <paramref name="path"/> if it matches, else creates it filled with zero noise.</summary>
    public static NoiseStore OpenOrCreate(string path, int count, int imageSize)
    {
        long length = HeaderBytes + (long)count * 3 * imageSize * imageSize;
        bool exists = File.Exists(path);
        if (exists)
        {
            using var check = new BinaryReader(File.OpenRead(path));
            if (check.BaseStream.Length != length || check.ReadInt64() != Magic || check.ReadInt32() != count || check.ReadInt32() != imageSize)
                throw new InvalidDataException($"{path} holds noise for a different data set or resolution; use a new work folder.");
        }
        else
        {
            Directory.CreateDirectory(System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path))!);
            using var create = new FileStream(path, FileMode.CreateNew);
            create.SetLength(length);
            using var writer = new BinaryWriter(create);
            writer.Write(Magic);
            writer.Write(count);
            writer.Write(imageSize);
        }
        return new NoiseStore(path, count, imageSize, MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.ReadWrite));
    }

    public sbyte[] ReadRaw(int index)
    {
        var raw = new sbyte[Plane];
        _view.ReadArray(Offset(index), raw, 0, raw.Length);
        return raw;
    }

    /// <summary>δ for these images as float [n, 3, S, S] in [0, 1] pixel units.</summary>
    public Tensor Read(IReadOnlyList<int> indices, Device device)
    {
        var data = new float[indices.Count * Plane];
        for (int n = 0; n < indices.Count; n++)
        {
            var raw = ReadRaw(indices[n]);
            for (int i = 0; i < raw.Length; i++) data[n * Plane + i] = raw[i] / 255f;
        }
        return tensor(data, [indices.Count, 3, ImageSize, ImageSize]).to(device);
    }

    public void Write(IReadOnlyList<int> indices, Tensor delta)
    {
        var values = delta.detach().cpu().contiguous().data<float>().ToArray();
        var raw = new sbyte[Plane];
        for (int n = 0; n < indices.Count; n++)
        {
            for (int i = 0; i < raw.Length; i++) raw[i] = (sbyte)Math.Clamp(MathF.Round(values[n * Plane + i] * 255f), -127, 127);
            _view.WriteArray(Offset(indices[n]), raw, 0, raw.Length);
        }
    }

    public void Flush() => _view.Flush();

    long Offset(int index)
    {
        if ((uint)index >= Count) throw new ArgumentOutOfRangeException(nameof(index), index, $"the store holds {Count} images");
        return HeaderBytes + (long)index * Plane;
    }

    public void Dispose()
    {
        _view.Flush();
        _view.Dispose();
        _file.Dispose();
    }
}
