using System.Text;
using static TorchSharp.torch;

namespace Unlearnable.Clip.Checkpoints;

/// <summary>
/// Reads TorchSharp's own <c>Module.save</c> format into a name → tensor map, so such files go
/// through the same key migration and checks as safetensors: a LEB128 entry count, then per
/// entry a length-prefixed UTF-8 name, the dtype and rank and each dimension as LEB128, and the
/// tensor's raw little-endian bytes.
/// </summary>
public static class TorchSharpFormat
{
    public static Dictionary<string, Tensor> Read(string path)
    {
        using var reader = new BinaryReader(File.OpenRead(path), Encoding.UTF8);
        long length = reader.BaseStream.Length;
        var tensors = new Dictionary<string, Tensor>();
        try
        {
            long count = Leb128(reader);
            if (count > length) throw Corrupt(path, $"it claims {count} entries");
            for (long i = 0; i < count; i++)
            {
                string name = reader.ReadString();
                var dtype = (ScalarType)Leb128(reader);
                long rank = Leb128(reader);
                if (rank > 8) throw Corrupt(path, $"'{name}' has rank {rank}");
                var shape = new long[rank];
                for (int d = 0; d < rank; d++) shape[d] = Leb128(reader);
                long bytes = shape.Aggregate(1L, (a, d) => a * d) * ElementSize(dtype, path, name);
                if (bytes > length - reader.BaseStream.Position) throw Corrupt(path, $"'{name}' runs past the end of the file");
                var t = empty(shape, dtype);
                t.bytes = reader.ReadBytes(checked((int)bytes));
                tensors[name] = t;
            }
        }
        catch (EndOfStreamException e)
        {
            foreach (var t in tensors.Values) t.Dispose();
            throw Corrupt(path, "the file ends early: " + e.Message);
        }
        return tensors;
    }

    static long Leb128(BinaryReader reader)
    {
        long value = 0;
        for (int shift = 0; shift < 63; shift += 7)
        {
            byte b = reader.ReadByte();
            value |= (long)(b & 0x7F) << shift;
            if ((b & 0x80) == 0) return value;
        }
        throw new InvalidDataException("a LEB128 number is longer than 64 bits");
    }

    static int ElementSize(ScalarType dtype, string path, string name) => dtype switch
    {
        ScalarType.Byte or ScalarType.Int8 or ScalarType.Bool => 1,
        ScalarType.Int16 or ScalarType.Float16 or ScalarType.BFloat16 => 2,
        ScalarType.Int32 or ScalarType.Float32 => 4,
        ScalarType.Int64 or ScalarType.Float64 => 8,
        _ => throw Corrupt(path, $"'{name}' has unsupported dtype {dtype}"),
    };

    static InvalidDataException Corrupt(string path, string why) => new($"{path}: not a valid TorchSharp checkpoint: {why}");
}
