using TorchSharp;
using Unlearnable.Clip.Model;
using Unlearnable.Training;
using static TorchSharp.torch;

namespace Unlearnable.Protection;

/// <summary>
/// The inner "train the surrogate on the protected data" steps: AdamW (lr 1e-4, wd 0.2 by
/// default) on batches of (x + δ, trigger ⊕ caption). Steps with a non-finite gradient are
/// skipped, as in <see cref="ClipTrainer"/>.
/// </summary>
public sealed class SurrogateUpdater : IDisposable
{
    readonly ClipModel _model;
    readonly ClipAdamW _optimizer;

    public SurrogateUpdater(ClipModel model, double learningRate, double weightDecay)
    {
        _model = model;
        _optimizer = new ClipAdamW(model, learningRate, weightDecay);
    }

    public int SkippedSteps { get; private set; }

    /// <summary>
    /// One update. The batch is built inside this method's own dispose scope and the optimiser
    /// steps outside it: never call this inside a dispose scope, because the optimiser creates its
    /// moment tensors on the first step and a scope would free them under it.
    /// </summary>
    /// <param name="batch">Builds the perturbed [0, 1] images and the text ids for this step.</param>
    /// <returns>The batch loss before the update.</returns>
    public double Step(Func<(Tensor Perturbed01, Tensor TextIds)> batch)
    {
        _model.train();
        _optimizer.ZeroGrad();
        double loss;
        using (NewDisposeScope())
        {
            var (perturbed01, textIds) = batch();
            var value = ContrastiveLoss.Compute(_model.Logits(_model.EncodeImage(PixelSpace.Normalize(perturbed01)), _model.EncodeText(textIds)));
            value.backward();
            loss = value.item<float>();
        }
        if (!ClipOptimization.StepIfFinite(_optimizer, _model, loss)) SkippedSteps++;
        return loss;
    }

    /// <summary>
    /// <paramref name="steps"/> updates, what both protectors' surrogate phases are: step s trains on the
    /// batch <paramref name="batch"/> builds for it; <paramref name="onStep"/> hears each step's loss.
    /// </summary>
    public void Run(int steps, Func<int, (Tensor Perturbed01, Tensor TextIds)> batch, CancellationToken cancel, Action<int, double>? onStep = null)
    {
        for (int step = 0; step < steps; step++)
        {
            cancel.ThrowIfCancellationRequested();
            double loss = Step(() => batch(step));
            onStep?.Invoke(step, loss);
        }
    }

    public void Save(string path) => _optimizer.Save(path);
    public void Load(string path) => _optimizer.Load(path);

    public void Dispose() => _optimizer.Dispose();
}
