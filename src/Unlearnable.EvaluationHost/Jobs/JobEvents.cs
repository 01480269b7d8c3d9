using System.Collections.Concurrent;
using System.Threading.Channels;
using Unlearnable.Contracts.V1;

namespace Unlearnable.EvaluationHost.Jobs;

/// <summary>
/// Fans a job's progress out to whoever is watching it. Each watcher has its own bounded
/// buffer that drops the oldest step events when it falls behind, so a slow client never
/// slows the job; state changes are never the ones dropped because they come last.
/// </summary>
public sealed class JobEvents
{
    readonly ConcurrentDictionary<string, ConcurrentDictionary<Channel<JobEvent>, byte>> _watchers = new();

    public Subscription Subscribe(string jobId)
    {
        var channel = Channel.CreateBounded<JobEvent>(new BoundedChannelOptions(256) { FullMode = BoundedChannelFullMode.DropOldest, SingleReader = true });
        var set = _watchers.GetOrAdd(jobId, _ => new());
        set[channel] = 0;
        return new Subscription(channel.Reader, () => set.TryRemove(channel, out _));
    }

    public void Publish(JobEvent e)
    {
        if (!_watchers.TryGetValue(e.JobId, out var set)) return;
        foreach (var channel in set.Keys) channel.Writer.TryWrite(e);
    }

    public sealed class Subscription(ChannelReader<JobEvent> reader, Action unsubscribe) : IDisposable
    {
        public ChannelReader<JobEvent> Reader { get; } = reader;
        public void Dispose() => unsubscribe();
    }
}
