using System.Collections.Concurrent;

namespace Unlearnable.Clip.Runtime;

/// <summary>
/// The one OS thread a long-running host does its torch work on. libtorch runs its CPU kernels in
/// OpenMP (libgomp) teams, one team per calling thread. Once a second thread has called in, libgomp
/// manages more threads than there are cores and its idle workers stop spinning between parallel
/// regions, so every small kernel waits for a wake-up, on every thread, for the rest of the process.
/// Measured on 2 cores: a tiny CLIP's batch MEM 1.5–1.7× slower, and small kernels about 2×, as soon
/// as model work hopped between thread-pool threads. Work queued here runs in order, one item at a time.
/// A host makes one (two in one process, as in tests, are correct but pay the wake-ups); disposing it
/// lets the thread end after the work already queued, and libgomp then frees its team.
/// </summary>
public sealed class TorchThread : IDisposable
{
    readonly BlockingCollection<Action> _work = new();
    readonly Thread _thread;

    public TorchThread(string name = "torch")
    {
        // The main thread's stack size: libtorch's autograd and oneDNN's kernels are written for it.
        _thread = new Thread(() => { foreach (var item in _work.GetConsumingEnumerable()) item(); }, 8 << 20) { IsBackground = true, Name = name };
        _thread.Start();
    }

    /// <summary>True on the torch thread itself (work there runs inline instead of queueing behind itself).</summary>
    public bool IsCurrent => Thread.CurrentThread == _thread;

    /// <summary>Runs <paramref name="work"/> on the torch thread after what is queued before it.</summary>
    public Task<T> RunAsync<T>(Func<T> work)
    {
        var done = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        void Run()
        {
            try { done.SetResult(work()); }
            catch (OperationCanceledException e) { done.TrySetCanceled(e.CancellationToken); }
            catch (Exception e) { done.SetException(e); }
        }
        if (IsCurrent) Run();
        else _work.Add(Run);
        return done.Task;
    }

    public Task RunAsync(Action work) => RunAsync(() => { work(); return true; });

    public void Dispose() => _work.CompleteAdding();
}
