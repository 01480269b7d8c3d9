using System.Collections;
using System.IO.Compression;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace Unlearnable.Clip.Checkpoints;

/// <summary>
/// PyTorch's own files, read without Python: TorchScript archives (OpenAI's released
/// <c>.pt</c>, read by libtorch through TorchSharp) and pickled state dicts saved with
/// <c>torch.save</c> (open_clip's <c>.bin</c> / <c>.pt</c>, read by TorchSharp.PyBridge, which
/// rebuilds tensors only and runs no pickled code). Files from before PyTorch 1.6 (not zip) are
/// not read: re-save them or convert them to safetensors.
/// </summary>
public static class PyTorchFiles
{
    /// <summary>Chosen by content, whatever the extension: PyTorch (1.6 and later) saves a zip archive.</summary>
    public static Dictionary<string, Tensor> Read(string path) => IsTorchScript(path) ? ReadTorchScript(path) : ReadPickled(path);

    public static bool IsArchive(string path)
    {
        using var file = File.OpenRead(path);
        Span<byte> magic = stackalloc byte[4];
        return file.Read(magic) == 4 && magic.SequenceEqual("PK\u0003\u0004"u8);
    }

    static bool IsTorchScript(string path)
    {
        using var zip = ZipFile.OpenRead(path);
        return zip.Entries.Any(e => e.FullName.EndsWith("/constants.pkl", StringComparison.Ordinal) || e.FullName.Contains("/code/", StringComparison.Ordinal));
    }

    static Dictionary<string, Tensor> ReadTorchScript(string path)
    {
        using var module = jit.load(path);
        var tensors = new Dictionary<string, Tensor>();
        foreach (var (name, p) in module.named_parameters()) tensors[name] = p.detach().clone();
        foreach (var (name, b) in module.named_buffers()) tensors[name] = b.detach().clone();
        return tensors;
    }

    static Dictionary<string, Tensor> ReadPickled(string path)
    {
        Hashtable table;
        try { table = PyTorchUnpickler.UnpickleStateDict(path); }
        catch (Exception e) when (e is not IOException)
        {
            throw new InvalidDataException($"{path}: not a PyTorch state dict ({e.Message}); save model.state_dict(), not the model", e);
        }
        // Training checkpoints wrap the weights: {"state_dict": {...}, "epoch": ...}, keys prefixed "module." under DDP.
        if (table["state_dict"] is Hashtable inner) table = inner;
        var tensors = new Dictionary<string, Tensor>();
        foreach (DictionaryEntry entry in table)
            if (entry.Value is Tensor t) tensors[((string)entry.Key).StartsWith("module.", StringComparison.Ordinal) ? ((string)entry.Key)["module.".Length..] : (string)entry.Key] = t;
        return tensors;
    }
}
