using static TorchSharp.torch;

namespace Unlearnable.Clip.Runtime;

/// <summary>Turns "cpu", "cuda", "cuda:N" or "auto" into a torch device; auto prefers CUDA when TorchSharp sees it.</summary>
public static class Devices
{
    public static Device Resolve(string spec)
    {
        TorchRuntime.EnsureLoaded();
        var s = spec.Trim().ToLowerInvariant();
        if (s == "auto") return cuda.is_available() ? CUDA : CPU;
        if (s == "cpu") return CPU;
        if (s == "cuda" || s.StartsWith("cuda:", StringComparison.Ordinal))
        {
            if (!cuda.is_available())
                throw new ArgumentException($"Device '{spec}' was asked for, but TorchSharp sees no CUDA device (this build uses libtorch-cpu; build with -p:UseCuda=true on a GPU host).");
            return new Device(s);
        }
        throw new ArgumentException($"Unknown device '{spec}'. Use cpu, cuda, cuda:N or auto.");
    }
}
