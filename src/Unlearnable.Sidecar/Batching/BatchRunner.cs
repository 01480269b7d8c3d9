using System.Diagnostics;
using Microsoft.Extensions.Options;
using Unlearnable.Clip.Text;
using Unlearnable.Protection;
using Unlearnable.Sidecar.Model;
using Unlearnable.Sidecar.Observability;
using Unlearnable.Sidecar.Profiles;
using static TorchSharp.torch;

namespace Unlearnable.Sidecar.Batching;

/// <summary>
/// Protects one micro-batch of posts that share settings: batch-level MEM (or EM without a
/// trigger) against the warm surrogate (or all of an ensemble's members at once), padded with anchor pairs when the batch is small; each
/// post gets its noise quantised to whole 1/255 steps within ε. Tensors only: carrying the noise
/// to full resolution and encoding happen in each post's own pipeline, so the model thread never
/// waits for a codec. Each user's shared pattern is read from their profile before the batch and
/// written back after it (one batch runs at a time in a process, so no other batch here changes it).
/// </summary>
public sealed class BatchRunner(IOptions<SidecarOptions> options, WarmSurrogate surrogate, TriggerVocabularies vocabularies, SidecarMetrics metrics, IProfileStore store)
{
    public void Run(IReadOnlyList<PendingPost> posts, CancellationToken stopping)
    {
        var settings = options.Value;
        var key = posts[0].Key;
        int size = surrogate.Model.Config.Vision.ImageSize, plane = 3 * size * size;
        var anchors = surrogate.Anchors.Take(Math.Max(posts.Count < 2 ? 1 : 0, settings.Batching.MinContrastiveBatch - posts.Count)).ToList();
        var captions = posts.Select(p => p.Caption).Concat(anchors.Select(a => a.Caption)).ToList();
        var fixedTriggers = posts.Select(p => p.FixedTrigger).Concat(anchors.Select(_ => (int[]?)null)).ToList();
        var pixels = posts.SelectMany(p => p.Pixels01).Concat(anchors.SelectMany(a => a.Pixels01)).ToArray();
        bool withTrigger = key.TriggerLength > 0;
        var level = settings.Protection.Of(key.Strength);
        var protection = settings.Protection.PostOptions(level, key.Epsilon, key.TriggerLength, settings.Model.Seed, settings.Model.Precision) with { BatchSize = captions.Count };
        var queued = posts.Select(p => p.Queued.Elapsed).ToArray();
        foreach (var wait in queued) metrics.QueueSeconds.Observe(wait.TotalSeconds);
        metrics.BatchSize.Observe(posts.Count);
        metrics.BatchExecutions.Inc();
        metrics.BatchedPosts.Inc(posts.Count);

        var clock = Stopwatch.StartNew();
        float[] delta;
        BatchProtection result;
        using (NewDisposeScope())
        {
            var clean01 = tensor(pixels, [captions.Count, 3, size, size]).to(surrogate.Device);
            var protector = new BatchProtector(surrogate.Members, protection, vocabularies.Get(key.Vocabulary), surrogate.Device);
            using var users = UsersOf(posts, captions.Count, size, protection.UserBound);
            result = protector.Protect(clean01, captions, level.Rounds, settings.Protection.ScratchSurrogateSteps, fixedTriggers, stopping, users?.Noise);
            delta = result.Delta.cpu().data<float>().ToArray();
            users?.Save(store, size);
        }
        clock.Stop();
        metrics.OptimiseSeconds.Observe(clock.Elapsed.TotalSeconds);

        int bound = (int)Math.Floor(key.Epsilon + 1e-6);
        for (int i = 0; i < posts.Count; i++)
        {
            var post = posts[i];
            if (post.Cancel.IsCancellationRequested)
            {
                post.Completion.TrySetCanceled(post.Cancel);
                continue;
            }
            var noise = new sbyte[plane];
            for (int j = 0; j < plane; j++) noise[j] = (sbyte)Math.Clamp((int)MathF.Round(delta[i * plane + j] * 255f), -bound, bound);
            var trigger = withTrigger ? result.Triggers[i] : [];
            post.Completion.TrySetResult(new BatchedNoise(noise, bound, withTrigger ? ClipTokenizer.Default.Decode(trigger) : "", trigger,
                result.Loss, level.Rounds * level.PgdSteps, queued[i], clock.Elapsed, posts.Count));
        }
    }

    /// <param name="bound">The pattern's bound (<see cref="ProtectionOptions.UserBound"/>, whole 1/255 steps); zero = no user pattern.</param>
    BatchUsers? UsersOf(IReadOnlyList<PendingPost> posts, int samples, int size, double bound)
    {
        int whole = (int)Math.Round(bound * 255);
        if (whole < 1) return null;
        var ids = posts.Select(p => p.User).Distinct().ToList();
        var stored = store.UserNoise(ids, size);
        int plane = 3 * size * size;
        var loaded = ids.Select(id => stored.TryGetValue(id, out var pattern) ? pattern : new sbyte[plane]).ToList();
        var values = new float[ids.Count * plane];
        for (int u = 0; u < ids.Count; u++)
            for (int j = 0; j < plane; j++) values[u * plane + j] = Math.Clamp(loaded[u][j], -whole, whole) / 255f;
        var rows = Enumerable.Range(0, samples).Select(i => i < posts.Count ? ids.IndexOf(posts[i].User) : -1).ToList();
        return new BatchUsers(ids, loaded, whole, new UserNoise(tensor(values, [ids.Count, 3, size, size]).to(surrogate.Device), rows, whole / 255.0));
    }

    /// <param name="Loaded">The patterns as stored, which a batch at a lower bound sees cut to it.</param>
    sealed record BatchUsers(IReadOnlyList<UserKey> Ids, IReadOnlyList<sbyte[]> Loaded, int Whole, UserNoise Noise) : IDisposable
    {
        /// <summary>Writes back the stored patterns moved by what the batch moved them (not the cut copy), so a low-strength post does not shrink a pattern built at a higher one.</summary>
        public void Save(IProfileStore store, int size)
        {
            var values = Noise.Patterns.cpu().data<float>().ToArray();
            int plane = 3 * size * size;
            for (int u = 0; u < Ids.Count; u++)
            {
                var pattern = new sbyte[plane];
                for (int j = 0; j < plane; j++)
                {
                    int moved = (int)MathF.Round(values[u * plane + j] * 255f) - Math.Clamp(Loaded[u][j], -Whole, Whole);
                    pattern[j] = (sbyte)Math.Clamp(Loaded[u][j] + moved, -127, 127);
                }
                store.SaveUserNoise(Ids[u], size, pattern);
            }
        }

        public void Dispose() => Noise.Dispose();
    }
}
