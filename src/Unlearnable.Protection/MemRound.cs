using System.Diagnostics;
using Unlearnable.Clip.Model;
using Unlearnable.Clip.Runtime;
using Unlearnable.Clip.Text;
using Unlearnable.Data;
using static TorchSharp.torch;

namespace Unlearnable.Protection;

/// <summary>
/// How one round's random draws are keyed: step s of PGD pairs captions by
/// <c>Seeds.Mix(seed, ShuffleKey..., s)</c> and draws its platform transformation at <c>TransformOffset + s</c>.
/// The two protectors key them differently because their recorded outputs predate this type.
/// </summary>
public sealed record RoundSeeds(long[] ShuffleKey, int TransformOffset)
{
    /// <summary>A dataset batch: keyed by the round and the batch's first item (each batch of a round draws anew).</summary>
    public static RoundSeeds ForDatasetBatch(int seed, int round, int firstItem) =>
        new([seed, round, firstItem], Seeds.Mix(round, firstItem));

    /// <summary>A batch of posts: keyed by the round only; the transformations run on from round to round.</summary>
    public static RoundSeeds ForPosts(int seed, int round, int pgdSteps) => new([seed, round], round * pgdSteps);

    public int Shuffle(int step) => Seeds.Mix([.. ShuffleKey, step]);
}

/// <summary>What an ensemble's surrogates must share, checked in one place: both MEM steps feed them the same images and captions.</summary>
public static class Surrogates
{
    /// <summary>Surrogates one protection is made against at most: each costs about as much as the first.</summary>
    public const int MaxMembers = 8;

    /// <returns>The members, once they are at least one and all read one image size and one text context.</returns>
    public static IReadOnlyList<ClipModel> Checked(IReadOnlyList<ClipModel> members)
    {
        if (members.Count == 0) throw new ArgumentException("protection needs at least one surrogate");
        if (members.Select(m => m.Config.Vision.ImageSize).Distinct().Count() > 1)
            throw new ArgumentException($"an ensemble's members must read images of one size; these read {string.Join(", ", members.Select(m => m.Config.Vision.ImageSize))} px");
        if (members.Select(m => m.Config.Text.ContextLength).Distinct().Count() > 1)
            throw new ArgumentException($"an ensemble's members must read the same text context; these read {string.Join(", ", members.Select(m => m.Config.Text.ContextLength))} tokens");
        return members;
    }
}

/// <summary>
/// One MEM round on a batch, what the dataset and the batch protectors both run: (1) a HotFlip update
/// of each image's trigger against the images as they would be published, (2) PGD on the batch's own
/// noise with S(T), each image's trigger on another sample's caption and a new pairing every step,
/// while the users' patterns step with it. EM is the same without triggers; UAP maximises. Against several surrogates
/// (an ensemble) both steps follow the members' mean loss.
/// </summary>
public sealed class MemRound(IReadOnlyList<ClipModel> members, ProtectionOptions options, TriggerVocabulary vocabulary, Device device)
{
    readonly TriggerSearch _search = new(members, vocabulary, options.TopK, options.BeamWidth, device);
    readonly NoiseOptimizer _noise = new(members, options);
    readonly Stopwatch _pgd = new(), _trigger = new();

    public MemRound(ClipModel model, ProtectionOptions options, TriggerVocabulary vocabulary, Device device) : this([model], options, vocabulary, device) { }

    public TimeSpan PgdTime => _pgd.Elapsed;
    public TimeSpan TriggerTime => _trigger.Elapsed;

    /// <param name="clean01">[b, 3, S, S] in [0, 1].</param>
    /// <param name="own">Each image's own noise: all of it, or the part beside its user's pattern.</param>
    /// <param name="published">The noise each image would be published with now: what the trigger search sees.</param>
    /// <param name="triggers">Each image's trigger (unused for EM and UAP).</param>
    /// <param name="searchTriggers">Whether this round updates the triggers.</param>
    /// <param name="sticky">Per image, a trigger that the search must not change, or null.</param>
    /// <param name="users">The users' patterns, stepped in place; null for sample-wise noise.</param>
    public (Tensor Own, List<int[]> Triggers, double Loss) Run(Tensor clean01, Tensor own, Tensor published, IReadOnlyList<string> captions,
        IReadOnlyList<int[]> triggers, bool searchTriggers, RoundSeeds seeds, UserNoise? users = null, IReadOnlyList<int[]?>? sticky = null)
    {
        // The surrogates are frozen for the round: their products may run in reduced precision (weights rounded once per call).
        using var precision = ReducedPrecision.Enter(options.Precision);
        var current = triggers.ToList();
        if (options.UsesTrigger && searchTriggers)
        {
            _trigger.Start();
            current = _search.UpdateForImages(clean01.Plus(published), captions, current).Select((found, i) => sticky?[i] ?? found).ToList();
            _trigger.Stop();
        }
        int context = members[0].Config.Text.ContextLength;
        var plain = options.UsesTrigger ? null : TextTensors.Batch(captions, context, device);
        Func<int, Tensor> texts = plain is null
            ? step => TriggeredCaptions.Shuffled(current, captions, seeds.Shuffle(step), context, device)
            : _ => plain;

        _pgd.Start();
        var (optimised, loss) = _noise.Run(clean01, own, texts, minimise: options.Method != ProtectionMethod.Uap, seeds.TransformOffset, users);
        _pgd.Stop();
        return (optimised, current, loss);
    }
}
