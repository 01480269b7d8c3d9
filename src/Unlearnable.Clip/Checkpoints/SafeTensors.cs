using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using static TorchSharp.torch;

namespace Unlearnable.Clip.Checkpoints;

/// <summary>
/// The safetensors format: an 8-byte little-endian header size, a JSON header naming each
/// tensor's dtype, shape and byte range, then the raw little-endian data. Reading checks every
/// range and size, since checkpoints come from elsewhere.
/// </summary>
public static class SafeTensors
{
    const long MaxHeaderBytes = 100L << 20;

    public sealed record Contents(Dictionary<string, Tensor> Tensors, Dictionary<string, string> Metadata);

    public static void Write(string path, IEnumerable<(string Name, Tensor Tensor)> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var header = new JsonObject();
        if (metadata is { Count: > 0 })
            header["__metadata__"] = new JsonObject(metadata.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value)));
        var blobs = new List<byte[]>();
        long offset = 0;
        foreach (var (name, t) in tensors)
        {
            var (dtype, bytes) = ToBytes(t);
            header[name] = new JsonObject
            {
                ["dtype"] = dtype,
                ["shape"] = new JsonArray(t.shape.Select(d => (JsonNode?)d).ToArray()),
                ["data_offsets"] = new JsonArray(offset, offset + bytes.Length),
            };
            blobs.Add(bytes);
            offset += bytes.Length;
        }
        var json = Encoding.UTF8.GetBytes(header.ToJsonString());
        var padded = (json.Length + 7) / 8 * 8; // keep the data 8-byte aligned, padding with spaces
        var tmp = path + ".tmp";
        using (var file = File.Create(tmp))
        {
            Span<byte> size = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(size, (ulong)padded);
            file.Write(size);
            file.Write(json);
            for (int i = json.Length; i < padded; i++) file.WriteByte((byte)' ');
            foreach (var blob in blobs) file.Write(blob);
        }
        File.Move(tmp, path, overwrite: true);
    }

    public static Contents Read(string path)
    {
        using var file = File.OpenRead(path);
        Span<byte> sizeBytes = stackalloc byte[8];
        if (file.Read(sizeBytes) != 8) throw Corrupt(path, "file is shorter than the 8-byte header size");
        ulong headerSize = BinaryPrimitives.ReadUInt64LittleEndian(sizeBytes);
        if (headerSize > (ulong)Math.Min(MaxHeaderBytes, file.Length - 8))
            throw Corrupt(path, $"header size {headerSize} exceeds the file or the {MaxHeaderBytes >> 20} MiB limit");
        var headerBytes = new byte[headerSize];
        file.ReadExactly(headerBytes);
        JsonObject header;
        try { header = JsonNode.Parse(headerBytes)?.AsObject() ?? throw Corrupt(path, "header is not a JSON object"); }
        catch (JsonException e) { throw Corrupt(path, "header is not valid JSON: " + e.Message); }

        long dataStart = 8 + (long)headerSize, dataLength = file.Length - dataStart;
        var tensors = new Dictionary<string, Tensor>();
        var metadata = new Dictionary<string, string>();
        foreach (var (name, node) in header)
        {
            if (name == "__metadata__")
            {
                foreach (var (k, v) in node!.AsObject()) metadata[k] = v?.GetValue<string>() ?? "";
                continue;
            }
            var entry = node?.AsObject() ?? throw Corrupt(path, $"entry '{name}' is not an object");
            string dtype = entry["dtype"]?.GetValue<string>() ?? throw Corrupt(path, $"'{name}' has no dtype");
            long[] shape = entry["shape"]?.AsArray().Select(d => d!.GetValue<long>()).ToArray() ?? throw Corrupt(path, $"'{name}' has no shape");
            var range = entry["data_offsets"]?.AsArray().Select(d => d!.GetValue<long>()).ToArray();
            if (range is not { Length: 2 } || range[0] < 0 || range[1] < range[0] || range[1] > dataLength)
                throw Corrupt(path, $"'{name}' has data offsets outside the file's {dataLength} data bytes");
            long count = shape.Aggregate(1L, (a, d) => d < 0 ? throw Corrupt(path, $"'{name}' has a negative dimension") : a * d);
            if (count * ElementSize(dtype, path, name) != range[1] - range[0])
                throw Corrupt(path, $"'{name}' is {dtype}{FormatShape(shape)} but has {range[1] - range[0]} bytes");
            var bytes = new byte[range[1] - range[0]];
            file.Position = dataStart + range[0];
            file.ReadExactly(bytes);
            tensors[name] = FromBytes(dtype, bytes, shape);
        }
        return new Contents(tensors, metadata);
    }

    public static string FormatShape(long[] shape) => "[" + string.Join(", ", shape) + "]";

    static InvalidDataException Corrupt(string path, string why) => new($"{path}: not a valid safetensors file: {why}");

    static int ElementSize(string dtype, string path, string name) => dtype switch
    {
        "F32" or "I32" => 4,
        "F16" or "BF16" => 2,
        "I64" or "F64" => 8,
        _ => throw Corrupt(path, $"'{name}' has unsupported dtype {dtype}"),
    };

    static (string, byte[]) ToBytes(Tensor t)
    {
        var cpuTensor = t.detach().cpu().contiguous();
        return cpuTensor.dtype switch
        {
            ScalarType.Float32 => ("F32", MemoryMarshal.AsBytes(cpuTensor.data<float>().ToArray().AsSpan()).ToArray()),
            ScalarType.Int64 => ("I64", MemoryMarshal.AsBytes(cpuTensor.data<long>().ToArray().AsSpan()).ToArray()),
            ScalarType.Int32 => ("I32", MemoryMarshal.AsBytes(cpuTensor.data<int>().ToArray().AsSpan()).ToArray()),
            _ => ("F32", MemoryMarshal.AsBytes(cpuTensor.to_type(ScalarType.Float32).data<float>().ToArray().AsSpan()).ToArray()),
        };
    }

    // Floats of any width load as float32 (the models run in float32); integers keep their width.
    static Tensor FromBytes(string dtype, byte[] bytes, long[] shape) => dtype switch
    {
        "F32" => tensor(MemoryMarshal.Cast<byte, float>(bytes).ToArray(), shape),
        "F64" => tensor(MemoryMarshal.Cast<byte, double>(bytes).ToArray().Select(d => (float)d).ToArray(), shape),
        "F16" => tensor(MemoryMarshal.Cast<byte, Half>(bytes).ToArray().Select(h => (float)h).ToArray(), shape),
        "BF16" => tensor(MemoryMarshal.Cast<byte, ushort>(bytes).ToArray().Select(b => BitConverter.Int32BitsToSingle(b << 16)).ToArray(), shape),
        "I64" => tensor(MemoryMarshal.Cast<byte, long>(bytes).ToArray(), shape),
        "I32" => tensor(MemoryMarshal.Cast<byte, int>(bytes).ToArray(), shape),
        _ => throw new InvalidDataException($"unsupported dtype {dtype}"),
    };
}
