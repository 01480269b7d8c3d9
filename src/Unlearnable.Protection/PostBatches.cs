using System.Diagnostics;
using Unlearnable.Clip.Model;
using Unlearnable.Clip.Runtime;
using Unlearnable.Data;
using Unlearnable.Training;
using static TorchSharp.torch;

namespace Unlearnable.Protection;

/// <summary>
/// Protects posts the way the sidecar does, without a server: in arrival order, micro-batches of
/// <see cref="BatchSize"/> posts, each protected once by <see cref="BatchProtector"/> against a fixed
/// surrogate (never trained on the posts), one trigger per post on its first caption, and each
/// owner's pattern carried from batch to batch as the sidecar's profiles carry it. The result is a
/// <see cref="ProtectionResult"/>, so <see cref="ProtectedDataset"/> publishes it like any other. Against several
/// surrogates (an ensemble) every batch is protected against all of them.
/// </summary>
public sealed class PostBatches(IReadOnlyList<ClipModel> members, ProtectionOptions options, TriggerVocabulary vocabulary, Device device)
{
    public PostBatches(ClipModel surrogate, ProtectionOptions options, TriggerVocabulary vocabulary, Device device) : this([surrogate], options, vocabulary, device) { }

    /// <summary>The sidecar's largest micro-batch.</summary>
    public const int SidecarBatchSize = 16;

    public int BatchSize { get; init; } = SidecarBatchSize;
    /// <summary>Trigger-update + PGD rounds per batch (the strength level's).</summary>
    public int Rounds { get; init; } = 2;
    /// <summary>Surrogate steps on a private copy of each member before each batch (the sidecar's ScratchSurrogateSteps).</summary>
    public int ScratchSurrogateSteps { get; init; }
    /// <summary>Each owner's first trigger is kept for all their later posts (the sidecar's sticky trigger policy).</summary>
    public bool StickyTriggers { get; init; }
    /// <summary>Posts done so far, of all.</summary>
    public Action<int, int>? OnBatch { get; init; }

    public ProtectionResult Protect(IReadOnlyList<CaptionedImage> posts, ImageTensors pixels, string workDir, CancellationToken cancel = default)
    {
        if (posts.Count < 2) throw new ArgumentException($"a contrastive batch needs at least 2 posts, got {posts.Count}");
        int size = members[0].Config.Vision.ImageSize;
        Directory.CreateDirectory(workDir);
        // Posts are protected once, in order: a new run starts from no noise and no patterns, as a new sidecar would.
        foreach (var stale in new[] { "post-noise.bin", "post-user-noise.bin" }) File.Delete(Path.Combine(workDir, stale));
        var noise = NoiseStore.OpenOrCreate(Path.Combine(workDir, "post-noise.bin"), posts.Count, size);
        var triggers = options.UsesTrigger ? new TriggerTable(posts.Select(p => p.Captions.Count).ToList(), options.TriggerLength, TriggerTable.TheToken, perImage: true) : null;
        using var owners = OwnerPatterns.Open(posts, options, Path.Combine(workDir, "post-user-noise.bin"), size);
        var protector = new BatchProtector(members, options with { BatchSize = Math.Max(2, BatchSize) }, vocabulary, device);
        var sticky = new Dictionary<string, int[]>();
        var (losses, pgd, trigger) = (new List<double>(), TimeSpan.Zero, TimeSpan.Zero);
        int done = 0;
        foreach (var members in Batches(posts, sticky))
        {
            cancel.ThrowIfCancellationRequested();
            using var scope = NewDisposeScope();
            var clean01 = PixelSpace.Unnormalize(pixels.Batch(members.Select(i => posts[i].Image).ToList(), device));
            using var users = owners?.ForBatch(members, device, options.UserBound);
            var fixedTriggers = StickyTriggers && options.UsesTrigger
                ? members.Select(i => posts[i].Owner is { } owner && sticky.TryGetValue(owner, out var kept) ? kept : null).ToList() : null;
            var batch = protector.Protect(clean01, members.Select(i => posts[i].Captions[0]).ToList(), Rounds, ScratchSurrogateSteps, fixedTriggers, cancel, users);
            noise.Write(members, batch.Delta);
            for (int n = 0; n < members.Count && triggers is not null; n++) triggers.Set(members[n], 0, batch.Triggers[n]);
            if (fixedTriggers is not null)
                for (int n = 0; n < members.Count; n++)
                    if (posts[members[n]].Owner is { } owner) sticky.TryAdd(owner, batch.Triggers[n]);
            if (users is not null) owners!.Keep(users);
            (pgd, trigger) = (pgd + batch.PgdTime, trigger + batch.TriggerTime);
            losses.Add(batch.Loss);
            done += members.Count;
            OnBatch?.Invoke(done, posts.Count);
        }
        noise.Flush();
        return new ProtectionResult(noise, triggers, [losses.Average()], pgd, trigger, TimeSpan.Zero);
    }

    /// <summary>
    /// The micro-batches, in arrival order. With sticky triggers a person's later posts wait while their first trigger is being
    /// decided, as the sidecar holds a sticky user (read lazily: each batch sees the triggers the batches before it decided).
    /// </summary>
    IEnumerable<List<int>> Batches(IReadOnlyList<CaptionedImage> posts, IReadOnlyDictionary<string, int[]> sticky)
    {
        if (!StickyTriggers || !options.UsesTrigger)
        {
            int start = 0;
            foreach (int count in ClipTrainer.BatchSizes(posts.Count, BatchSize))
            {
                yield return Enumerable.Range(start, count).ToList();
                start += count;
            }
            yield break;
        }
        var waiting = Enumerable.Range(0, posts.Count).ToList();
        while (waiting.Count > 0)
        {
            var batch = new List<int>();
            var deciding = new HashSet<string>();
            foreach (int i in waiting)
            {
                if (batch.Count == BatchSize) break;
                if (posts[i].Owner is { } owner && !sticky.ContainsKey(owner) && !deciding.Add(owner)) continue;
                batch.Add(i);
            }
            // A contrastive batch needs two posts: posts join it while it has fewer, and a post that would be left alone joins
            // it too, even if their person is still deciding.
            foreach (int i in waiting.Except(batch).ToList())
                if (batch.Count < 2 || waiting.Count - batch.Count == 1) batch.Add(i);
            batch.Sort();
            waiting.RemoveAll(batch.Contains);
            yield return batch;
        }
    }
}
