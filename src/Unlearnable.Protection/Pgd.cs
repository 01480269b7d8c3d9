using Unlearnable.Clip.Runtime;
using static TorchSharp.torch;

namespace Unlearnable.Protection;

/// <summary>
/// One projected signed-gradient step on image noise δ in [0, 1] pixel units:
/// δ ← Proj_ε(δ ∓ α·sign(∇δ L)) (minus to minimise, plus to maximise), then δ is cut so that
/// x + δ stays a valid image.
/// </summary>
public static class Pgd
{
    public static Tensor Step(Tensor delta, Tensor gradient, Tensor clean01, double epsilon, double stepSize, bool minimise)
    {
        using var _ = no_grad();
        var moved = delta.PlusScaled(gradient.sign(), minimise ? -stepSize : stepSize);
        var projected = moved.Clamped(-epsilon, epsilon);
        return clean01.Plus(projected).Clamped(0, 1).Minus(clean01);
    }
}
