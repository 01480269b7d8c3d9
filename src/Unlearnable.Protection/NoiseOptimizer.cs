using Unlearnable.Clip.Model;
using Unlearnable.Clip.Runtime;
using Unlearnable.Training;
using static TorchSharp.torch;

namespace Unlearnable.Protection;

/// <summary>
/// PGD on a batch's image noise against a fixed surrogate (eval mode). Minimising (EM, MEM)
/// makes the noise a shortcut for the loss; maximising (UAP) makes it adversarial. With
/// caption shuffling (MEM's S(T)), every step pairs each image with its own trigger on another
/// sample's clean caption, so the noise must bind to the trigger rather than to the caption.
/// </summary>
public sealed class NoiseOptimizer(ClipModel model, ProtectionOptions options)
{
    /// <param name="texts">Text ids for step s (the shuffle draws a new pairing each step).</param>
    /// <returns>The optimised δ and the loss at the last step.</returns>
    public (Tensor Delta, double Loss) Run(Tensor clean01, Tensor delta, Func<int, Tensor> texts, bool minimise)
    {
        bool wasTraining = model.training;
        model.eval();
        double loss = double.NaN;
        try
        {
            delta = delta.detach().clone();
            for (int step = 0; step < options.PgdSteps; step++)
            {
                using var scope = NewDisposeScope();
                var d = delta.detach().requires_grad_(true);
                var value = ContrastiveLoss.Compute(model.Logits(model.EncodeImage(PixelSpace.Normalize(clean01.Plus(d))), model.EncodeText(texts(step))));
                // NaN gradients (see TorchRuntime: a libtorch CPU kernel fault) move no pixel rather than poisoning δ.
                var gradient = autograd.grad([value], [d])[0].nan_to_num(0, 0, 0);
                loss = value.item<float>();
                delta = Pgd.Step(delta, gradient, clean01, options.Epsilon, options.StepSize, minimise).MoveToOuterDisposeScope();
            }
            return (delta, loss);
        }
        finally
        {
            model.train(wasTraining);
        }
    }
}
