using System.Runtime.CompilerServices;

namespace Unlearnable.Protection.Tests;

static class NativeEnvironment
{
    /// <summary>Before any test touches torch, so every test in this process computes with the same oneDNN kernels.</summary>
    [ModuleInitializer]
    internal static void Prepare() => Unlearnable.Clip.Runtime.TorchRuntime.PrepareNativeEnvironment();
}
