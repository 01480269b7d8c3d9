using TorchSharp;
using Unlearnable.Clip.Model;
using Unlearnable.Clip.Text;
using Unlearnable.Clip.Runtime;
using static TorchSharp.torch;

namespace Unlearnable.Protection;

/// <summary>
/// HotFlip trigger search. The gradient of the contrastive loss with respect to each trigger
/// position's token embedding ranks every allowed token by the first-order loss change
/// −∇e·E^T; the top-k per position are then tried left to right, each scored by the real loss
/// with a beam of partial triggers per sample. Image features are fixed during the search, so
/// every candidate costs a text-tower forward only. With several surrogates (an ensemble, which must share the
/// tokenizer's vocabulary and text context), candidates are ranked by the sum of the members' first-order estimates
/// and tries scored by the members' mean loss.
/// </summary>
public sealed class TriggerSearch(IReadOnlyList<ClipModel> members, TriggerVocabulary vocabulary, int topK, int beamWidth, Device device)
{
    readonly Tensor _disallowed = DisallowedMask(vocabulary, device);
    readonly int _context = Surrogates.Checked(members)[0].Config.Text.ContextLength;

    public TriggerSearch(ClipModel model, TriggerVocabulary vocabulary, int topK, int beamWidth, Device device) : this([model], vocabulary, topK, beamWidth, device) { }

    /// <summary>Text-tower forwards spent so far, and the caption rows they encoded (for benchmarks).</summary>
    public long TextForwards { get; private set; }
    public long TextRows { get; private set; }

    /// <summary>
    /// Bytes of MLP activations one scoring forward may hold: a position's tries go through as many at once as fit
    /// (at least one: the batch's rows). Measured on this 2-core CPU: forwards that stay in cache run fastest; at the
    /// tiny preset, batch 32, 128-row forwards searched 1.4× faster than 1,024-row ones, and at vitb32 the width of
    /// the forward made no difference. Default 8 MB: ~5 tries of 32 at tiny, ~6 of 8 at vitb32.
    /// </summary>
    public long ActivationBudget { get; init; } = 8L << 20;

    /// <summary>Encodes the perturbed images once per member (eval mode, no gradient), then searches against those features.</summary>
    /// <param name="perturbed01">[b, 3, S, S] images with their current noise, in [0, 1].</param>
    public List<int[]> UpdateForImages(Tensor perturbed01, IReadOnlyList<string> captions, IReadOnlyList<int[]> triggers)
    {
        var features = new List<Tensor>();
        foreach (var member in members)
        {
            bool wasTraining = member.training;
            using (no_grad())
            {
                member.eval();
                features.Add(member.EncodeImage(PixelSpace.Normalize(perturbed01)));
            }
            member.train(wasTraining);
        }
        return Update(features, captions, triggers);
    }

    /// <param name="imageFeatures">[b, d] features of the (perturbed) images, fixed during the search.</param>
    /// <returns>The new trigger of every sample; each is never worse than its current one under the scoring.</returns>
    public List<int[]> Update(Tensor imageFeatures, IReadOnlyList<string> captions, IReadOnlyList<int[]> triggers) => Update([imageFeatures], captions, triggers);

    /// <param name="imageFeatures">Per member, [b, d] features of the (perturbed) images, fixed during the search.</param>
    public List<int[]> Update(IReadOnlyList<Tensor> imageFeatures, IReadOnlyList<string> captions, IReadOnlyList<int[]> triggers)
    {
        int b = captions.Count, k = triggers[0].Length, context = _context;
        var wasTraining = members.Select(m => m.training).ToList();
        foreach (var member in members) member.eval();
        try
        {
            var images = imageFeatures.Select(f => f.detach()).ToList();
            // Each caption tokenised once: the gradient pass reads these rows, and a try only rewrites their k trigger slots right after SOT.
            var rows = captions.Select((c, i) => TriggeredCaptions.Row(triggers[i], c, context)).ToList();
            long[,,] candidates = Candidates(images, captions, triggers, rows);
            var beams = triggers.Select(t => new List<(int[] Trigger, double Loss)> { (t.ToArray(), double.PositiveInfinity) }).ToList();
            for (int p = 0; p < k; p++)
            {
                // Every (beam entry, candidate) try of this position, scored in as few text forwards as the row bound allows.
                var tries = new List<int[][]>();
                int widest = beams.Max(x => x.Count);
                for (int e = 0; e < widest; e++)
                    for (int j = -1; j < candidates.GetLength(2); j++)
                        tries.Add(Enumerable.Range(0, b).Select(s =>
                        {
                            var t = beams[s][Math.Min(e, beams[s].Count - 1)].Trigger.ToArray();
                            if (j >= 0) t[p] = (int)candidates[s, p, j];
                            return t;
                        }).ToArray());
                var losses = Score(images, rows, tries);
                var pool = Enumerable.Range(0, b).Select(_ => new Dictionary<string, (int[] Trigger, double Loss)>()).ToList();
                for (int n = 0; n < tries.Count; n++)
                    for (int s = 0; s < b; s++) pool[s].TryAdd(string.Join(',', tries[n][s]), (tries[n][s], losses[n][s]));
                beams = pool.Select(options => options.Values.OrderBy(o => o.Loss).Take(beamWidth).ToList()).ToList();
            }
            return beams.Select(x => x[0].Trigger).ToList();
        }
        finally
        {
            for (int m = 0; m < members.Count; m++) members[m].train(wasTraining[m]);
        }
    }

    /// <summary>Top-k tokens per sample and trigger position by −∇e·E^T (summed over the members), disallowed tokens excluded.</summary>
    long[,,] Candidates(IReadOnlyList<Tensor> images, IReadOnlyList<string> captions, IReadOnlyList<int[]> triggers, IReadOnlyList<int[]> rows)
    {
        using var scope = NewDisposeScope();
        int b = captions.Count, k = triggers[0].Length;
        var ids = tensor(rows.SelectMany(r => r.Select(id => (long)id)).ToArray(), [b, rows[0].Length]).to(device);
        Tensor? scores = null;
        for (int m = 0; m < members.Count; m++)
        {
            var model = members[m];
            var embeddings = model.EmbedTokens(ids).detach().requires_grad_(true);
            var loss = ContrastiveLoss.Compute(model.Logits(images[m], model.EncodeTextEmbeddings(embeddings, TextFeatures.EndOfTextIndex(ids))));
            var gradient = autograd.grad([loss], [embeddings])[0].narrow(1, 1, k).nan_to_num(0);   // [b, k, width]
            (TextForwards, TextRows) = (TextForwards + 1, TextRows + b);
            var estimate = -gradient.matmul(model.TokenEmbeddingMatrix.detach().T);                  // [b, k, vocab]
            scores = scores is null ? estimate : scores.Plus(estimate);
        }
        scores = scores!.masked_fill(_disallowed, KeptScalars.Of(double.NegativeInfinity));   // a temporary Scalar can be freed by the GC mid-call (KeptScalars)
        var top = vocabulary.Proposer is { } proposer
            ? TopAmongProposals(scores, proposer.Propose(captions, k), triggers)
            : scores.topk(Math.Min(topK, vocabulary.Tokens.Count), dim: -1).indexes.cpu();
        var result = new long[b, k, top.shape[2]];
        var flat = top.data<long>().ToArray();
        Buffer.BlockCopy(flat, 0, result, 0, flat.Length * sizeof(long));
        return result;
    }

    /// <summary>
    /// Ranks each sample's own proposals per position by the HotFlip score and keeps the top-k.
    /// A position with no proposal keeps its current token.
    /// </summary>
    Tensor TopAmongProposals(Tensor scores, IReadOnlyList<int[][]> proposals, IReadOnlyList<int[]> triggers)
    {
        int b = proposals.Count, k = triggers[0].Length;
        int width = Math.Max(1, proposals.SelectMany(p => p).Max(c => c.Length));
        var index = new long[b * k * width];
        for (int s = 0; s < b; s++)
            for (int p = 0; p < k; p++)
            {
                var own = proposals[s][p].Length > 0 ? proposals[s][p] : [triggers[s][p]];
                for (int j = 0; j < width; j++) index[(s * k + p) * width + j] = own[Math.Min(j, own.Length - 1)];   // pad by repeating
            }
        var candidates = tensor(index, [b, k, width]).to(device);
        var best = scores.gather(2, candidates).topk(Math.Min(topK, width), dim: -1).indexes;
        return candidates.gather(2, best).cpu();
    }

    /// <summary>
    /// Per try, each sample's loss with that try's triggers (a try is one trigger per sample: the batch's contrastive
    /// loss couples the samples, so a try is scored as a whole batch, as if it were the only one).
    /// </summary>
    double[][] Score(IReadOnlyList<Tensor> images, IReadOnlyList<int[]> rows, IReadOnlyList<int[][]> tries)
    {
        if (members.Count == 1) return Score(members[0], images[0], rows, tries);
        var perMember = members.Select((model, m) => Score(model, images[m], rows, tries)).ToList();
        return Enumerable.Range(0, tries.Count)
            .Select(n => Enumerable.Range(0, rows.Count).Select(s => perMember.Average(losses => losses[n][s])).ToArray()).ToArray();
    }

    double[][] Score(ClipModel model, Tensor images, IReadOnlyList<int[]> rows, IReadOnlyList<int[][]> tries)
    {
        int b = rows.Count, context = rows[0].Length, used = rows.Max(r => Array.IndexOf(r, ClipTokenizer.EndOfText) + 1);
        int perForward = (int)Math.Clamp(ActivationBudget / ((long)b * used * 4 * model.Config.Text.Width * sizeof(float)), 1, tries.Count);
        var losses = new double[tries.Count][];
        for (int first = 0; first < tries.Count; first += perForward)
        {
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            int count = Math.Min(perForward, tries.Count - first);
            var ids = new long[count * b * context];
            for (int n = 0; n < count; n++)
                for (int s = 0; s < b; s++)
                {
                    int at = (n * b + s) * context;
                    for (int i = 0; i < context; i++) ids[at + i] = rows[s][i];
                    var trigger = tries[first + n][s];
                    for (int i = 0; i < trigger.Length; i++) ids[at + 1 + i] = trigger[i];
                }
            var texts = model.EncodeText(tensor(ids, [count * b, context]).to(device)).view(count, b, -1);
            (TextForwards, TextRows) = (TextForwards + 1, TextRows + count * b);
            for (int n = 0; n < count; n++)
                losses[first + n] = ContrastiveLoss.PerSample(model.Logits(images, texts[n])).cpu().data<float>().ToArray().Select(x => (double)x).ToArray();
        }
        return losses;
    }

    static Tensor DisallowedMask(TriggerVocabulary vocabulary, Device device)
    {
        var mask = Enumerable.Repeat(true, Clip.Text.ClipTokenizer.VocabularySize).ToArray();
        foreach (var t in vocabulary.Tokens) mask[t] = false;
        return tensor(mask).to(device);
    }
}
