using Unlearnable.Contracts.V1;
using Unlearnable.Sidecar.Batching;
using Unlearnable.Sidecar.Profiles;

namespace Unlearnable.Sidecar.Posts;

/// <summary>
/// Posts being protected right now, by user (a tenant's) and post id. A repeated post joins the running one
/// instead of being protected twice; the shared work stops only when every caller waiting for
/// it has gone (one caller's cancellation does not cancel another's answer); a user's posts
/// can be cancelled together (their profile was deleted); and no user has more than their
/// share of the server at once.
/// </summary>
public sealed class InFlightPosts : IPostsInFlight
{
    sealed class Entry(UserKey user, byte[] hash)
    {
        public UserKey User { get; } = user;
        public byte[] Hash { get; } = hash;
        public TaskCompletionSource<ProtectResponse> Result { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public CancellationTokenSource Cancel { get; } = new();
        public int Waiters;
        /// <summary>Set under the lock as the entry leaves the map, before its token source is disposed.</summary>
        public bool Done;
    }

    readonly Lock _lock = new();
    readonly Dictionary<(UserKey User, string Post), Entry> _posts = [];
    readonly Dictionary<UserKey, int> _perUser = [];

    public int Count { get { lock (_lock) return _posts.Count; } }

    /// <summary>
    /// The answer of this post: the running work's when the same post is in flight (Joined, with
    /// the hash it was started with), else <paramref name="start"/>'s, run with a token that is
    /// cancelled once no caller waits any more.
    /// </summary>
    public async Task<(ProtectResponse Response, bool Joined, byte[] Hash)> RunAsync(UserKey user, string post, byte[] hash, int perUserLimit,
        Func<CancellationToken, Task<ProtectResponse>> start, CancellationToken caller)
    {
        Entry entry;
        bool joined;
        while (true)
        {
            Task? abandoned = null;
            lock (_lock)
            {
                joined = _posts.TryGetValue((user, post), out entry!);
                if (joined && entry.Cancel.IsCancellationRequested) abandoned = entry.Result.Task;   // everyone left it: do not inherit that
                else
                {
                    if (!joined)
                    {
                        int held = _perUser.GetValueOrDefault(user);
                        if (held >= perUserLimit)
                            throw new UserShareExceededException($"this user has {held} posts being protected, their share (Sidecar:Limits:MaxPostsInFlightPerUser {perUserLimit}); retry when one is answered");
                        entry = new Entry(user, hash);
                        _posts[(user, post)] = entry;
                        _perUser[user] = held + 1;
                    }
                    entry.Waiters++;
                }
            }
            if (abandoned is null) break;
            await abandoned.ContinueWith(_ => { }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default).WaitAsync(caller);
        }
        if (!joined) _ = Run(entry, post, start);
        try { return (await entry.Result.Task.WaitAsync(caller), joined, entry.Hash); }
        catch (OperationCanceledException) when (caller.IsCancellationRequested)
        {
            // Left explicitly rather than from a token callback: the await's continuation can run inside
            // Cancel() and dispose such a registration before it is called.
            Leave(entry);
            throw;
        }
    }

    async Task Run(Entry entry, string post, Func<CancellationToken, Task<ProtectResponse>> start)
    {
        try { entry.Result.TrySetResult(await Task.Run(() => start(entry.Cancel.Token))); }
        catch (OperationCanceledException e) { entry.Result.TrySetCanceled(e.CancellationToken); }
        catch (Exception e) { entry.Result.TrySetException(e); }
        finally
        {
            lock (_lock)
            {
                entry.Done = true;
                _posts.Remove((entry.User, post));
                if (--_perUser[entry.User] == 0) _perUser.Remove(entry.User);
            }
            entry.Cancel.Dispose();
        }
    }

    void Leave(Entry entry)
    {
        lock (_lock)
        {
            if (--entry.Waiters == 0 && !entry.Done) entry.Cancel.Cancel();
        }
    }

    /// <summary>Cancels every post of a user (their profile is being deleted); returns how many.</summary>
    public int CancelUser(UserKey user)
    {
        lock (_lock)
        {
            var mine = _posts.Values.Where(e => e.User == user).ToList();   // entries leave the map as they are done
            foreach (var e in mine) e.Cancel.Cancel();
            return mine.Count;
        }
    }

    /// <summary>Cancels everything still running (the drain's grace period is over).</summary>
    public void CancelAll()
    {
        lock (_lock)
            foreach (var e in _posts.Values) e.Cancel.Cancel();
    }
}

/// <summary>The user already has their share of posts in flight (RESOURCE_EXHAUSTED, counted apart from a full queue).</summary>
public sealed class UserShareExceededException(string message) : QueueFullException(message);
