using System.Diagnostics;
using TorchSharp;
using Unlearnable.Clip.Checkpoints;
using Unlearnable.Clip.Model;
using Unlearnable.Clip.Runtime;
using Unlearnable.Training;
using static TorchSharp.torch;

namespace Unlearnable.Protection;

/// <summary>A protected batch: noise and triggers per post, the final loss and where the time went.</summary>
public sealed record BatchProtection(Tensor Delta, IReadOnlyList<int[]> Triggers, double Loss, TimeSpan PgdTime, TimeSpan TriggerTime, TimeSpan SurrogateTime);

/// <summary>
/// Batch-level MEM for new posts against a warm surrogate (what the sidecar runs per
/// micro-batch): optional surrogate steps on a scratch copy (the shared model is never
/// changed), then <see cref="MemRound"/>s, each a trigger update and PGD with caption shuffling.
/// EM is the same without triggers. Against an ensemble every member is a surrogate (each with its own scratch copy).
/// </summary>
public sealed class BatchProtector(IReadOnlyList<ClipModel> members, ProtectionOptions options, TriggerVocabulary vocabulary, Device device)
{
    public BatchProtector(ClipModel surrogate, ProtectionOptions options, TriggerVocabulary vocabulary, Device device) : this([surrogate], options, vocabulary, device) { }

    /// <param name="clean01">[b, 3, S, S] posts at model resolution in [0, 1].</param>
    /// <param name="rounds">Trigger-update + PGD rounds for this batch.</param>
    /// <param name="scratchSurrogateSteps">Surrogate steps on a private copy before protecting (0 = use the warm model as is).</param>
    /// <param name="fixedTriggers">Per post, a trigger to keep instead of searching one (a user's sticky trigger), or null.</param>
    /// <param name="users">The posting users' shared patterns (stepped in place; the caller keeps them), or null for sample-wise noise.</param>
    /// <returns>Delta is the noise to publish: the user's pattern plus the post's own.</returns>
    public BatchProtection Protect(Tensor clean01, IReadOnlyList<string> captions, int rounds = 1, int scratchSurrogateSteps = 0,
        IReadOnlyList<int[]?>? fixedTriggers = null, CancellationToken cancel = default, UserNoise? users = null)
    {
        options.Validate(Surrogates.Checked(members)[0].Config.Text.ContextLength);
        if (clean01.shape[0] != captions.Count) throw new ArgumentException("one caption per image is needed");
        if (captions.Count < 2) throw new ArgumentException("a contrastive batch needs at least 2 posts");
        int context = members[0].Config.Text.ContextLength;
        if (fixedTriggers is not null && fixedTriggers.Count != captions.Count) throw new ArgumentException("one fixed-trigger entry (or null) per post is needed");
        var triggers = options.UsesTrigger
            ? captions.Select((_, i) => Fixed(i) ?? Enumerable.Repeat(TriggerTable.TheToken, options.TriggerLength).ToArray()).ToList()
            : captions.Select(_ => Array.Empty<int>()).ToList();
        int[]? Fixed(int i) => fixedTriggers?[i] is { } t
            ? (t.Length == options.TriggerLength ? t : throw new ArgumentException($"fixed trigger {i} has {t.Length} tokens, the batch uses {options.TriggerLength}"))
            : null;
        var own = zeros_like(clean01);
        Tensor Published() => users?.Published(clean01, own) ?? own;

        var models = members;
        var surrogateClock = new Stopwatch();
        if (scratchSurrogateSteps > 0)
        {
            surrogateClock.Start();
            models = members.Select(ScratchCopy).ToList();
            foreach (var model in models)
            {
                using var updater = new SurrogateUpdater(model, options.SurrogateLearningRate, options.SurrogateWeightDecay);
                updater.Run(scratchSurrogateSteps, _ => (clean01.Plus(Published()).Clamped(0, 1), TriggeredCaptions.Batch(triggers, captions, context, device)), cancel);
            }
            surrogateClock.Stop();
        }

        var mem = new MemRound(models, options, vocabulary, device);
        double loss = double.NaN;
        for (int round = 0; round < rounds; round++)
        {
            cancel.ThrowIfCancellationRequested();
            (own, triggers, loss) = mem.Run(clean01, own, Published(), captions, triggers, searchTriggers: true,
                RoundSeeds.ForPosts(options.Seed, round, options.PgdSteps), users, fixedTriggers);
        }
        if (!ReferenceEquals(models, members)) foreach (var model in models) model.Dispose();
        return new BatchProtection(Published(), triggers, loss, mem.PgdTime, mem.TriggerTime, surrogateClock.Elapsed);
    }

    ClipModel ScratchCopy(ClipModel surrogate)
    {
        var copy = new ClipModel(surrogate.Config);
        ClipCheckpoint.LoadStateDict(copy, surrogate.state_dict(), "warm surrogate");
        copy.to(device);
        return copy;
    }
}
