using Unlearnable.Clip.Runtime;
using static TorchSharp.torch;

namespace Unlearnable.Clip.Tests;

/// <summary>The one thread a host's torch work runs on: one OS thread whoever queues, in order, errors and results carried back.</summary>
public class TorchThreadTests
{
    [Fact]
    public async Task WorkFromManyThreadsRunsOnOneThreadInTheOrderQueued()
    {
        using var torch = new TorchThread();
        var order = new List<int>();
        var threads = new HashSet<int>();
        var queued = new List<Task>();
        for (int i = 0; i < 20; i++)
        {
            int n = i;
            // Queued from thread-pool threads, as a host's requests and services do (the outer task ends once it is queued).
            queued.Add(await Task.Factory.StartNew(() => torch.RunAsync(() =>
            {
                lock (order) { order.Add(n); threads.Add(Environment.CurrentManagedThreadId); }
                using var scope = NewDisposeScope();
                return ones(64, 64).mm(ones(64, 64)).sum().item<float>();
            }), CancellationToken.None, TaskCreationOptions.None, TaskScheduler.Default));
        }
        await Task.WhenAll(queued);
        Assert.Equal(Enumerable.Range(0, 20), order);
        Assert.Single(threads);
        Assert.DoesNotContain(Environment.CurrentManagedThreadId, threads);
        Assert.Equal(64f * 64 * 64, await torch.RunAsync(() => { using var scope = NewDisposeScope(); return ones(64, 64).mm(ones(64, 64)).sum().item<float>(); }));
    }

    [Fact]
    public async Task ErrorsAndCancellationReachTheCallerAndTheThreadGoesOn()
    {
        using var torch = new TorchThread();
        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => torch.RunAsync(() => throw new InvalidOperationException("bad batch")));
        Assert.Equal("bad batch", error.Message);
        using var cancelled = new CancellationTokenSource();
        cancelled.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => torch.RunAsync(() => cancelled.Token.ThrowIfCancellationRequested()));
        Assert.Equal(3, await torch.RunAsync(() => 3));
    }

    [Fact]
    public async Task WorkQueuedFromTheTorchThreadRunsAtOnceInsteadOfWaitingForItself()
    {
        using var torch = new TorchThread();
        var inner = await torch.RunAsync(() => torch.RunAsync(() => torch.IsCurrent));
        Assert.True(inner.IsCompleted);
        Assert.True(await inner);
        Assert.False(torch.IsCurrent);
    }
}
