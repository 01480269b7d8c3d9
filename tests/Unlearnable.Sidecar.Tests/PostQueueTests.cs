using Microsoft.Extensions.Time.Testing;
using Unlearnable.Sidecar.Batching;

namespace Unlearnable.Sidecar.Tests;

/// <summary>The queue's policy on its own, on a fake clock: priorities, bulk share, queue timeouts with REJECT and DELAY.</summary>
public class PostQueueTests
{
    static readonly BatchKey Medium = new(8, 3, "common-words", Protection.ProtectionStrength.Medium);
    static readonly BatchKey Low = new(4, 3, "common-words", Protection.ProtectionStrength.Low);

    static PendingPost Post(string user, PostPriority priority = PostPriority.Interactive, int? timeoutMs = null,
        QueueTimeoutAction action = QueueTimeoutAction.Reject, BatchKey? key = null) =>
        new(new Profiles.UserKey("acme", user), new float[3], "a caption", key ?? Medium, null,
            new QueuePolicy(priority, timeoutMs is { } ms ? TimeSpan.FromMilliseconds(ms) : null, action), CancellationToken.None);

    static List<string> Drain(PostQueue queue, Func<PendingPost, bool>? fits = null)
    {
        var order = new List<string>();
        while (queue.TryTake(fits ?? (_ => true), out var p)) order.Add(p.User.Id);
        return order;
    }

    [Fact]
    public void InteractivePostsStartBeforeBulkOnesAndEachLaneKeepsItsOrder()
    {
        var queue = new PostQueue(16, 12, new FakeTimeProvider());
        queue.Add(Post("bulk-1", PostPriority.Bulk));
        queue.Add(Post("live-1"));
        queue.Add(Post("bulk-2", PostPriority.Bulk));
        queue.Add(Post("live-2"));
        Assert.Equal(["live-1", "live-2", "bulk-1", "bulk-2"], Drain(queue));
        Assert.Equal(0, queue.Count);
    }

    [Fact]
    public void ABatchTakesOnlyPostsWithItsSettingsAndLeavesTheRestInOrder()
    {
        var queue = new PostQueue(16, 12, new FakeTimeProvider());
        queue.Add(Post("a"));
        queue.Add(Post("low", key: Low));
        queue.Add(Post("b", PostPriority.Bulk));
        Assert.Equal(["a", "b"], Drain(queue, p => p.Key == Medium));
        Assert.Equal(["low"], Drain(queue));
    }

    [Fact]
    public void BulkPostsFillOnlyTheirShareSoAnInteractiveUploadFindsRoom()
    {
        var queue = new PostQueue(4, 2, new FakeTimeProvider());
        queue.Add(Post("b1", PostPriority.Bulk));
        queue.Add(Post("b2", PostPriority.Bulk));
        var refused = Assert.Throws<BulkShareFullException>(() => queue.Add(Post("b3", PostPriority.Bulk)));
        Assert.Contains("BulkQueueShare", refused.Message);
        queue.Add(Post("i1"));
        queue.Add(Post("i2"));
        var full = Assert.Throws<QueueFullException>(() => queue.Add(Post("i3")));
        Assert.IsNotType<BulkShareFullException>(full);
        Assert.Contains("4 posts waiting", full.Message);
        Assert.True(queue.TryTake(p => p.User.Id == "b1", out _));   // a bulk slot comes back when its post leaves
        queue.Add(Post("b4", PostPriority.Bulk));
    }

    [Fact]
    public async Task APostPastItsTimeoutWithRejectLeavesTheQueueWithAnErrorNamingTheTimeout()
    {
        var clock = new FakeTimeProvider();
        var queue = new PostQueue(16, 12, clock);
        var late = Post("late", timeoutMs: 500);
        queue.Add(late);
        queue.Add(Post("patient"));
        clock.Advance(TimeSpan.FromMilliseconds(499));
        Assert.False(late.Completion.Task.IsCompleted);
        clock.Advance(TimeSpan.FromMilliseconds(1));
        var e = await Assert.ThrowsAsync<QueueTimeoutException>(() => late.Completion.Task);
        Assert.Contains("queue timeout of 500 ms", e.Message);
        Assert.Equal(["patient"], Drain(queue));
        Assert.False(late.TryTake());   // it can no longer join a batch
    }

    [Fact]
    public void APostPastItsTimeoutWithDelayRunsAfterEveryPostThatHasNotTimedOut()
    {
        var clock = new FakeTimeProvider();
        var queue = new PostQueue(16, 2, clock);
        queue.Add(Post("delayed", timeoutMs: 100, action: QueueTimeoutAction.Delay));
        queue.Add(Post("bulk-1", PostPriority.Bulk));
        clock.Advance(TimeSpan.FromMilliseconds(150));
        queue.Add(Post("bulk-2", PostPriority.Bulk));
        queue.Add(Post("live"));
        Assert.Equal(["live", "bulk-1", "bulk-2", "delayed"], Drain(queue));
    }

    [Fact]
    public void ADelayedBulkPostKeepsItsBulkSlotUntilItLeaves()
    {
        // Otherwise bulk posts asking for a 1 ms DELAY timeout could fill the whole queue.
        var clock = new FakeTimeProvider();
        var queue = new PostQueue(8, 1, clock);
        queue.Add(Post("slow", PostPriority.Bulk, timeoutMs: 10, action: QueueTimeoutAction.Delay));
        clock.Advance(TimeSpan.FromMilliseconds(10));
        Assert.Throws<BulkShareFullException>(() => queue.Add(Post("b2", PostPriority.Bulk)));
        queue.Add(Post("live"));
        Assert.Equal(["live", "slow"], Drain(queue));
        queue.Add(Post("b2", PostPriority.Bulk));
    }

    [Fact]
    public void ATakenPostCanNoLongerBeCancelledOrTimedOut()
    {
        var clock = new FakeTimeProvider();
        var queue = new PostQueue(4, 4, clock);
        var post = Post("taken", timeoutMs: 5);
        queue.Add(post);
        Assert.True(queue.TryTake(_ => true, out _));
        Assert.False(queue.TryCancel(post));
        clock.Advance(TimeSpan.FromMilliseconds(10));
        Assert.False(post.Completion.Task.IsCompleted);   // its batch answers it
    }

    [Fact]
    public async Task ARemovedPostNoLongerCountsAndTheWaitSeesTheNextAddition()
    {
        var queue = new PostQueue(2, 2, new FakeTimeProvider());
        var gone = Post("gone");
        queue.Add(gone);
        Assert.True(queue.TryCancel(gone));
        Assert.False(queue.TryCancel(gone));
        Assert.False(gone.TryTake());
        Assert.Equal(0, queue.Count);
        var waiting = queue.WaitAsync(CancellationToken.None);
        Assert.False(waiting.IsCompleted);
        queue.Add(Post("next"));
        await waiting.WaitAsync(TimeSpan.FromSeconds(5));
        Assert.Equal(["next"], Drain(queue));
    }
}
