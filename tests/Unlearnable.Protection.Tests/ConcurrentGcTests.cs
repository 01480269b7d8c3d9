using TorchSharp;
using Unlearnable.Clip.Model;
using Unlearnable.Clip.Runtime;
using Unlearnable.Protection;
using Unlearnable.Training;
using static TorchSharp.torch;

namespace Unlearnable.Protection.Tests;

/// <summary>
/// A server allocates on many threads, so a GC can run while libtorch is inside a call. Any
/// number TorchSharp wraps on the fly (including the alpha = 1 of <c>a + b</c>) is then
/// unreachable and its finaliser may free it before libtorch reads it: libtorch throws
/// "alpha must not be a floating point number" / "toFloat", or computes with garbage.
/// Neither the PGD path the sidecar runs nor surrogate training may hand libtorch such temporaries.
/// </summary>
public class ConcurrentGcTests
{
    [Fact]
    public void PgdAndSurrogateStepsSurviveGarbageCollectionsOnAnotherThread()
    {
        random.manual_seed(5);
        using var model = new ClipModel(ClipPresets.Get("tiny"));
        var options = new ProtectionOptions { PgdSteps = 1 };
        var optimizer = new NoiseOptimizer(model, options);
        int size = model.Config.Vision.ImageSize;
        var clean = rand(4, 3, size, size);
        var ids = TokenIds.Of(model, "a red circle", "a blue square", "a green star", "a black ring");
        var delta = zeros(4, 3, size, size);
        var surrogate = new SurrogateUpdater(model, 1e-4, 0.2);   // training mode: batch norm and AdamW too

        using var stop = new CancellationTokenSource();
        var collector = new Thread(() => { while (!stop.IsCancellationRequested) { GC.Collect(); GC.WaitForPendingFinalizers(); } });
        collector.Start();
        var failures = new List<string>();
        try
        {
            for (int i = 0; i < 30; i++)
            {
                try
                {
                    var (next, loss) = optimizer.Run(clean, delta, _ => ids, minimise: true);
                    delta.Dispose();
                    delta = next;
                    if (!double.IsFinite(loss)) failures.Add($"iteration {i}: loss {loss}");
                    double trained = surrogate.Step(() => (clean.Plus(delta), ids));
                    if (!double.IsFinite(trained)) failures.Add($"iteration {i}: surrogate loss {trained}");
                }
                catch (Exception e) { failures.Add($"iteration {i}: {e.Message.Split('\n')[0]}"); }
            }
        }
        finally
        {
            stop.Cancel();
            collector.Join();
        }
        Assert.Empty(failures);
        Assert.True(delta.abs().max().item<float>() <= options.Epsilon + 1e-6);
    }
}
