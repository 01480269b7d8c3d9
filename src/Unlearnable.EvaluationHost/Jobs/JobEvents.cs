using System.Threading.Channels;
using Unlearnable.Contracts.V1;

namespace Unlearnable.EvaluationHost.Jobs;

/// <summary>
/// Fans a job's progress out to whoever is watching it. Each watcher has its own bounded
/// buffer so a slow client never slows the job; a watcher that falls a whole buffer behind is
/// ended with <see cref="WatcherFellBehindException"/> rather than silently losing events.
/// </summary>
public sealed class JobEvents
{
    public const int BufferedEvents = 256;
    readonly Dictionary<string, List<Channel<JobEvent>>> _watchers = [];
    readonly Lock _lock = new();

    public Subscription Subscribe(string jobId)
    {
        var channel = Channel.CreateBounded<JobEvent>(new BoundedChannelOptions(BufferedEvents) { FullMode = BoundedChannelFullMode.Wait, SingleReader = true });
        lock (_lock)
        {
            if (!_watchers.TryGetValue(jobId, out var list)) _watchers[jobId] = list = [];
            list.Add(channel);
        }
        return new Subscription(channel.Reader, () =>
        {
            lock (_lock)
            {
                if (_watchers.TryGetValue(jobId, out var list) && list.Remove(channel) && list.Count == 0) _watchers.Remove(jobId);
            }
        });
    }

    public void Publish(JobEvent e)
    {
        Channel<JobEvent>[] channels;
        lock (_lock) channels = _watchers.TryGetValue(e.JobId, out var list) ? [.. list] : [];
        foreach (var channel in channels)
            if (!channel.Writer.TryWrite(e)) channel.Writer.TryComplete(new WatcherFellBehindException());
    }

    public bool IsWatched(string jobId) { lock (_lock) return _watchers.ContainsKey(jobId); }

    public IReadOnlyList<string> Watched() { lock (_lock) return [.. _watchers.Keys]; }

    /// <summary>Jobs with at least one watcher right now (tests check that none leak).</summary>
    public int WatchedJobs { get { lock (_lock) return _watchers.Count; } }

    public sealed class Subscription(ChannelReader<JobEvent> reader, Action unsubscribe) : IDisposable
    {
        public ChannelReader<JobEvent> Reader { get; } = reader;
        public void Dispose() => unsubscribe();
    }
}

public sealed class WatcherFellBehindException() : Exception($"the watcher fell {JobEvents.BufferedEvents} events behind; watch again to continue from the current state");
