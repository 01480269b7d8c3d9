using System.Diagnostics;
using Microsoft.Extensions.Options;
using Unlearnable.Clip.Text;
using Unlearnable.Protection;
using Unlearnable.Sidecar.Model;
using Unlearnable.Sidecar.Observability;
using Unlearnable.Sidecar.Posts;
using static TorchSharp.torch;

namespace Unlearnable.Sidecar.Batching;

/// <summary>
/// Protects one micro-batch of posts that share settings: batch-level MEM (or EM without a
/// trigger) against the warm surrogate, padded with anchor pairs when the batch is small, then
/// each post's noise is quantised within ε, carried to full resolution and encoded.
/// </summary>
public sealed class BatchRunner(IOptions<SidecarOptions> options, WarmSurrogate surrogate, SidecarMetrics metrics)
{
    public void Run(IReadOnlyList<PendingPost> posts, CancellationToken stopping)
    {
        var settings = options.Value;
        var key = posts[0].Key;
        var model = surrogate.Model;
        int size = model.Config.Vision.ImageSize, plane = 3 * size * size;
        var anchors = surrogate.Anchors.Take(Math.Max(posts.Count < 2 ? 1 : 0, settings.Batching.MinContrastiveBatch - posts.Count)).ToList();
        var captions = posts.Select(p => p.Caption).Concat(anchors.Select(a => a.Caption)).ToList();
        var fixedTriggers = posts.Select(p => p.FixedTrigger).Concat(anchors.Select(_ => (int[]?)null)).ToList();
        var pixels = posts.SelectMany(p => p.Image.Pixels01).Concat(anchors.SelectMany(a => a.Pixels01)).ToArray();
        bool withTrigger = key.TriggerLength > 0;
        var level = settings.Protection.Of(key.Strength);
        var protection = new ProtectionOptions
        {
            Method = withTrigger ? ProtectionMethod.Mem : ProtectionMethod.Em,
            Epsilon = key.Epsilon / 255, StepSize = Math.Min(settings.Protection.StepSize, key.Epsilon) / 255,
            PgdSteps = level.PgdSteps, TriggerLength = withTrigger ? key.TriggerLength : 1, RobustTo = level.RobustTo,
            TopK = settings.Protection.TopK, BatchSize = captions.Count, Seed = settings.Model.Seed,
        };
        var queued = posts.Select(p => p.Queued.Elapsed).ToArray();
        foreach (var wait in queued) metrics.QueueSeconds.Observe(wait.TotalSeconds);
        metrics.BatchSize.Observe(posts.Count);

        var clock = Stopwatch.StartNew();
        float[] delta;
        BatchProtection result;
        using (NewDisposeScope())
        {
            var clean01 = tensor(pixels, [captions.Count, 3, size, size]).to(surrogate.Device);
            var protector = new BatchProtector(model, protection, TriggerVocabulary.BuiltIn(key.Vocabulary)!, surrogate.Device);
            result = protector.Protect(clean01, captions, level.Rounds, settings.Protection.ScratchSurrogateSteps, fixedTriggers, stopping);
            delta = result.Delta.cpu().data<float>().ToArray();
        }
        clock.Stop();
        metrics.OptimiseSeconds.Observe(clock.Elapsed.TotalSeconds);

        var images = new PostImages(settings.Limits, size);
        int bound = (int)Math.Floor(key.Epsilon + 1e-6);
        for (int i = 0; i < posts.Count; i++)
        {
            var post = posts[i];
            if (post.Cancel.IsCancellationRequested)
            {
                post.Completion.TrySetCanceled(post.Cancel);
                continue;
            }
            try
            {
                var noise = new sbyte[plane];
                for (int j = 0; j < plane; j++) noise[j] = (sbyte)Math.Clamp((int)MathF.Round(delta[i * plane + j] * 255f), -bound, bound);
                var encoded = images.Finish(post.Image, noise, post.Output, bound);
                var trigger = withTrigger ? result.Triggers[i] : [];
                post.Completion.TrySetResult(new ProtectedPost(encoded, withTrigger ? ClipTokenizer.Default.Decode(trigger) : "", trigger,
                    result.Loss, level.Rounds * level.PgdSteps, queued[i], clock.Elapsed, posts.Count));
            }
            catch (Exception e)
            {
                post.Completion.TrySetException(e);
            }
        }
    }
}
