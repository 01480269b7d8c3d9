using Microsoft.Extensions.Options;
using Unlearnable.Sidecar.Posts;

namespace Unlearnable.Sidecar.Tests;

/// <summary>Image work waits for its bytes, first come first served, and a cancelled wait takes nothing.</summary>
public class CodecMemoryTests
{
    static CodecMemory Budget(long bytes) => new(Options.Create(new SidecarOptions { Limits = { CodecMemoryBytes = bytes } }));

    [Fact]
    public async Task WorkWaitsForItsBytesInTheOrderItCame()
    {
        var memory = Budget(100);
        var first = await memory.HoldAsync(70, CancellationToken.None);
        var large = memory.HoldAsync(60, CancellationToken.None);   // does not fit beside the first
        var small = memory.HoldAsync(10, CancellationToken.None);   // would fit, but comes after the large one
        await Task.Delay(100);
        Assert.False(large.IsCompleted);
        Assert.False(small.IsCompleted);
        Assert.Equal(70, memory.HeldBytes);

        first.Dispose();
        first.Dispose();   // twice is harmless
        var (l, s) = (await large.WaitAsync(TimeSpan.FromSeconds(5)), await small.WaitAsync(TimeSpan.FromSeconds(5)));
        Assert.Equal(70, memory.HeldBytes);
        l.Dispose();
        s.Dispose();
        Assert.Equal(0, memory.HeldBytes);
    }

    [Fact]
    public async Task ALoneImageLargerThanTheBudgetRunsAndACancelledWaitTakesNothing()
    {
        var memory = Budget(100);
        var huge = await memory.HoldAsync(500, CancellationToken.None);   // nothing else held: it runs (the start-up check keeps this rare)
        using (var cancel = new CancellationTokenSource(100))
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => memory.HoldAsync(10, cancel.Token));
        huge.Dispose();
        Assert.Equal(0, memory.HeldBytes);
        (await memory.HoldAsync(100, CancellationToken.None)).Dispose();
        Assert.Equal(0, memory.HeldBytes);
    }

    [Fact]
    public async Task WhenTheFirstInLineGivesUpTheOnesBehindItThatFitGoOn()
    {
        var memory = Budget(100);
        using var first = await memory.HoldAsync(70, CancellationToken.None);
        using var giveUp = new CancellationTokenSource();
        var large = memory.HoldAsync(60, giveUp.Token);
        var small = memory.HoldAsync(10, CancellationToken.None);
        await Task.Delay(100);
        Assert.False(small.IsCompleted);
        await giveUp.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => large);
        (await small.WaitAsync(TimeSpan.FromSeconds(5))).Dispose();   // before, it waited for the first to finish
    }

    [Fact]
    public void StagesCostByPixels()
    {
        Assert.True(CodecMemory.Cost("finish", 1_000_000) > CodecMemory.Cost("decode", 1_000_000));
        Assert.Equal(2 * CodecMemory.Cost("finish", 1_000_000), CodecMemory.Cost("finish", 2_000_000));
    }
}
