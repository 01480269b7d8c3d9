using Unlearnable.Clip.Model;
using Unlearnable.Clip.Runtime;
using Unlearnable.Data;
using Unlearnable.Protection.Robustness;
using Unlearnable.Training;
using static TorchSharp.torch;

namespace Unlearnable.Protection;

/// <summary>
/// PGD on a batch's image noise against a fixed surrogate (eval mode). Minimising (EM, MEM)
/// makes the noise a shortcut for the loss; maximising (UAP) makes it adversarial. With
/// caption shuffling (MEM's S(T)), every step pairs each image with its own trigger on another
/// sample's clean caption, so the noise must bind to the trigger rather than to the caption.
/// With <see cref="ProtectionOptions.RobustTo"/>, each step sees the protected colour images through
/// one drawn platform transformation (EOT). A grey photo gets grey noise: its gradient is summed over
/// the channels, so all three move together and the published image stays grey. With
/// <see cref="UserNoise"/>, δ is each photo's own share of the noise (bounded by ε minus the user
/// share) and the users' patterns take a step with it on the same gradient.
/// With several surrogates (an ensemble), each step follows the mean of their losses: every member's gradient is taken
/// in turn (one graph alive at a time) and the step follows their mean; or, with <see cref="EnsembleStep.Drawn"/>, the
/// gradient of one member drawn for the step (the loss it reports is then that member's, on the view the step saw).
/// With <see cref="ProtectionOptions.InputDiversity"/>, a drawn share of the steps see a shrunk and padded view of the
/// batch; with <see cref="ProtectionOptions.SkipErosion"/>, every step sees the surrogates with their residual skips
/// scaled at random (model augmentation for transfer, both).
/// </summary>
public sealed class NoiseOptimizer(IReadOnlyList<ClipModel> members, ProtectionOptions options)
{
    public NoiseOptimizer(ClipModel model, ProtectionOptions options) : this([model], options) { }

    /// <param name="texts">Text ids for step s (the shuffle draws a new pairing each step).</param>
    /// <returns>The optimised δ and the loss at the last step.</returns>
    /// <param name="seedOffset">Distinguishes the calls of one run (round, batch) in the transformation draws.</param>
    /// <param name="users">The users' shared patterns, stepped in place; null for sample-wise noise only.</param>
    public (Tensor Delta, double Loss) Run(Tensor clean01, Tensor delta, Func<int, Tensor> texts, bool minimise, int seedOffset = 0, UserNoise? users = null)
    {
        double ownBound = options.Epsilon - (users?.Bound ?? 0);
        if (!(ownBound > 0)) throw new ArgumentOutOfRangeException(nameof(users), users?.Bound, "the user share must leave part of ε to each photo");
        var wasTraining = members.Select(m => m.training).ToList();
        foreach (var member in members) member.eval();
        double loss = double.NaN;
        try
        {
            delta = delta.detach().clone();
            using var grey = GreyMask(clean01);
            for (int step = 0; step < options.PgdSteps; step++)
            {
                using var scope = NewDisposeScope();
                var d = delta.detach().requires_grad_(true);
                var published = users is null ? clean01.Plus(d) : clean01.Plus(users.PerSample(grey)).Plus(d).Clamped(0, 1);
                // Grey photos see themselves as sent: noise without chroma already passes JPEG's chroma subsampling,
                // and on real grey faces the transformations cost more un-washed protection than they bought (docs/results.md).
                var seen = where(grey, published, PlatformTransforms.Apply(options.RobustTo, published, options.Seed, seedOffset + step));
                seen = InputDiversity.Apply(seen, options.InputDiversity, options.Seed, seedOffset + step);
                var ids = texts(step);
                Tensor gradient;
                double value;
                using (SkipErosion.Enter(options.SkipErosion, Seeds.For(SeedStream.SkipErosion, options.Seed, seedOffset + step)))
                    (gradient, value) = MeanGradient(StepMembers(seedOffset + step), seen, d, ids);
                gradient = where(grey, gradient.sum(1, keepdim: true).expand_as(gradient), gradient);
                loss = value;
                users?.Step(gradient, options.StepSize, minimise);
                delta = Pgd.Step(delta, gradient, clean01, ownBound, options.StepSize, minimise).MoveToOuterDisposeScope();
            }
            return (delta, loss);
        }
        finally
        {
            for (int m = 0; m < members.Count; m++) members[m].train(wasTraining[m]);
        }
    }

    /// <summary>The members' mean contrastive loss on these images and captions (eval mode as the caller left it), and its gradient with respect to the images.</summary>
    public (Tensor Gradient, double Loss) LossGradient(Tensor images01, Tensor textIds)
    {
        var x = images01.detach().requires_grad_(true);
        return MeanGradient(members, x, x, textIds);
    }

    /// <summary>
    /// The members a PGD step follows: all of them, or the one drawn for this step. Draws are balanced: each run of K
    /// steps (K members) follows every member once, in an order drawn for it, so no member is left out of a short run
    /// (a batch of posts takes 8 steps a round, and every batch draws alike).
    /// </summary>
    IReadOnlyList<ClipModel> StepMembers(int step)
    {
        if (options.EnsembleStep != EnsembleStep.Drawn || members.Count == 1) return members;
        int cycle = Math.DivRem(step, members.Count, out int place);
        var order = Enumerable.Range(0, members.Count).ToArray();
        new Random(Seeds.For(SeedStream.EnsembleDraw, options.Seed, cycle)).Shuffle(order);
        return [members[order[place]]];
    }

    // The members' mean loss and its gradient with respect to δ, one member's graph at a time.
    static (Tensor Gradient, double Loss) MeanGradient(IReadOnlyList<ClipModel> members, Tensor seen, Tensor d, Tensor ids)
    {
        Tensor? sum = null;
        double loss = 0;
        for (int m = 0; m < members.Count; m++)
        {
            var member = members[m];
            // The captions do not depend on δ: their features are constants of this step, encoded without a graph.
            Tensor captions;
            using (no_grad()) captions = member.EncodeText(ids);
            var value = ContrastiveLoss.Compute(member.Logits(member.EncodeImage(PixelSpace.Normalize(seen)), captions));
            // NaN gradients (see TorchRuntime: a libtorch CPU kernel fault) move no pixel rather than poisoning δ.
            // The transformation of δ is shared by the members' graphs: kept until the last member's gradient is taken.
            var gradient = autograd.grad([value], [d], retain_graph: m < members.Count - 1)[0].nan_to_num(0, 0, 0);
            sum = sum is null ? gradient : sum.Plus(gradient);
            loss += value.item<float>();
        }
        return members.Count == 1 ? (sum!, loss) : (sum!.div(KeptScalars.Of((double)members.Count)), loss / members.Count);
    }

    // [b, 1, 1, 1]: true where every pixel of the sample has R = G = B.
    internal static Tensor GreyMask(Tensor clean01)
    {
        using var scope = NewDisposeScope();
        var spread = clean01.amax(1).Minus(clean01.amin(1)).flatten(1).amax(1);
        return spread.eq(KeptScalars.Of(0.0)).reshape(-1, 1, 1, 1).MoveToOuterDisposeScope();
    }
}
