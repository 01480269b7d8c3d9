using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;
using TorchSharp;

namespace Unlearnable.Clip.Runtime;

/// <summary>
/// Loads libtorch once with a clear message if it cannot (the usual cause on Debian 12 is an
/// unpatched libLibTorchSharp.so, see build/LibTorchSharpGlibcxxPatch.targets), after setting
/// the native environment libtorch needs on this kind of CPU.
/// </summary>
public static partial class TorchRuntime
{
    /// <summary>
    /// Measured here (AMD EPYC with AVX-512, libtorch 2.10 CPU): oneDNN's AVX-512 convolution
    /// backward returns NaN input gradients for small channel counts (8 channels: ~1 call in 3).
    /// Capping oneDNN at AVX2 avoids it at no measurable cost. A value the user set is kept.
    /// </summary>
    public const string OneDnnIsaVariable = "ONEDNN_MAX_CPU_ISA";

    /// <summary>
    /// Sets the native environment libtorch reads (the oneDNN ISA cap). It must run before the
    /// process's first torch call of any kind, not only before the first model: entry points and
    /// test assemblies call it first thing (a module initializer), and loading calls it again.
    /// </summary>
    public static void PrepareNativeEnvironment()
    {
        if (OperatingSystem.IsLinux() && Avx512F.IsSupported) _ = setenv(OneDnnIsaVariable, "AVX2", overwrite: 0);
    }

    /// <summary>
    /// Lifts the AVX2 cap so that bfloat16 products run on oneDNN's AVX-512 BF16 kernels (<see cref="Model.MatmulPrecision"/>).
    /// Measured here (AMD EPYC with AVX-512 BF16, 2 threads): a [400, 768]·[768, 3,072] bfloat16 linear layer runs at 54
    /// GFLOP/s under the cap and 780 without it; float32 at ~200 either way. oneDNN reads the cap once, when torch first
    /// uses it, so this must run before libtorch starts, and before the process has other threads that read the
    /// environment (setenv is not safe beside them). The convolution fault above then returns on the CPUs that have
    /// it: NaN gradients move no pixel in PGD and skip the training step.
    /// </summary>
    /// <returns>Null when bfloat16 products will run on those kernels, else why not.</returns>
    public static string? EnableBFloat16Kernels()
    {
        if (BFloat16KernelsMissing() is not { } missing) return null;
        if (!CpuHasBFloat16 || UserCap is not null || Loaded.IsValueCreated) return missing;
        _lifted = setenv(OneDnnIsaVariable, "ALL", overwrite: 1) == 0;
        return BFloat16KernelsMissing();
    }

    /// <summary>Null when bfloat16 products run on oneDNN's BF16 kernels in this process, else why not (changes nothing).</summary>
    public static string? BFloat16KernelsMissing()
    {
        if (!CpuHasBFloat16) return "this CPU has neither AVX-512 BF16 nor AMX, so bfloat16 products run on slow fallbacks";
        if (UserCap is { } chosen)
            return chosen is "ALL" or "DEFAULT" || chosen.Contains("BF16") || chosen.Contains("AMX") || chosen.Contains("AVX10") ? null
                : $"{OneDnnIsaVariable}={chosen} caps oneDNN below its bfloat16 kernels";
        return _lifted ? null : $"libtorch started with oneDNN capped at AVX2 before bfloat16 was chosen ({OneDnnIsaVariable}=ALL in the environment lifts the cap)";
    }

    static bool _lifted;

    // A cap set in the process's environment at start (.NET's snapshot: the AVX2 cap this class sets natively is not in it).
    static string? UserCap => Environment.GetEnvironmentVariable(OneDnnIsaVariable);

    /// <summary>Whether this CPU multiplies bfloat16 natively (CPUID leaf 7: sub-leaf 1 EAX bit 5 is AVX512_BF16; sub-leaf 0 EDX bit 22 is AMX-BF16).</summary>
    public static bool CpuHasBFloat16 => X86Base.IsSupported && ((X86Base.CpuId(7, 1).Eax & (1 << 5)) != 0 || (X86Base.CpuId(7, 0).Edx & (1 << 22)) != 0);

    static readonly Lazy<bool> Loaded = new(() =>
    {
        PrepareNativeEnvironment();
        try
        {
            torch.InitializeDeviceType(DeviceType.CPU);
            return true;
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            throw new InvalidOperationException(
                "libtorch could not be loaded. If this is a copied output folder, rebuild it so the build marks " +
                "GLIBCXX_3.4.32 weak in libLibTorchSharp.so (the host libstdc++ lacks that version). Inner error: " + e.Message, e);
        }
    });

    // .NET's Environment.SetEnvironmentVariable does not reach native getenv on Unix; libc's setenv does.
    [LibraryImport("libc", EntryPoint = "setenv", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int setenv(string name, string value, int overwrite);

    public static void EnsureLoaded() => _ = Loaded.Value;

    /// <summary>
    /// The CPU threads a host's torch work should use: OMP_NUM_THREADS where set, else the cores .NET sees
    /// (<see cref="Environment.ProcessorCount"/>: the container's CPU limit, or DOTNET_PROCESSOR_COUNT), not the node's,
    /// which libgomp would take by default: a pod limited to 2 CPUs on a 64-core node would run 64 threads, throttled.
    /// </summary>
    public static int HostThreads =>
        int.TryParse(Environment.GetEnvironmentVariable("OMP_NUM_THREADS")?.Split(',')[0], out int set) && set > 0 ? set : Environment.ProcessorCount;   // "4,2": the outer level

    /// <summary>Sizes libtorch's CPU threads to <see cref="HostThreads"/>; run it on the host's torch thread. Returns the count now in use.</summary>
    public static int UseHostThreads()
    {
        EnsureLoaded();
        torch.set_num_threads(HostThreads);
        return torch.get_num_threads();
    }

    /// <summary>Seeds torch (CPU and CUDA) so model initialisation and sampling repeat.</summary>
    public static void Seed(long seed)
    {
        EnsureLoaded();
        torch.manual_seed(seed);
        if (torch.cuda.is_available()) torch.cuda.manual_seed(seed);
    }
}
