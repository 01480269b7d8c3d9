using Unlearnable.Clip.Model;
using Unlearnable.Clip.Runtime;
using Unlearnable.Clip.Text;
using Unlearnable.Data;
using Unlearnable.Training;
using static TorchSharp.torch;

namespace Unlearnable.Protection.Robustness;

/// <summary>
/// A briefly adversarially trained surrogate, a transfer lever: the model is fine-tuned for <see cref="Steps"/> steps on
/// its own public training pairs, each batch's images first moved by <see cref="AttackSteps"/> PGD steps (random start)
/// to raise the contrastive loss within <see cref="Epsilon"/>, so that the training step learns features such small
/// changes do not move. Noise made against a slightly robust model follows features that other models share more often
/// ("A little robustness goes a long way", Springer et al. 2021; REM's robust surrogate, Fu et al. 2022).
/// </summary>
/// <param name="Epsilon">The adversary's L∞ bound in pixel units (well below the protection's ε).</param>
/// <param name="LearningRate">AdamW's, weight decay 0.2 as the protectors' surrogate steps.</param>
public sealed record AdversarialHardening(double Epsilon = AdversarialHardening.DefaultEpsilon / 255, int Steps = AdversarialHardening.DefaultSteps,
    int AttackSteps = 3, int BatchSize = 64, double LearningRate = 1e-4, int Seed = 0)
{
    /// <summary>The adversary's ε in 1/255 units and the steps that measured best (docs/results.md), for specs and the sidecar alike.</summary>
    public const double DefaultEpsilon = 2;
    public const int DefaultSteps = 600;
    public const int MaxSteps = 10_000;
    /// <summary>What a hardening-steps setting may be (the sidecar's, a spec's, the demo's): unset for the default, 0 for none, else up to <see cref="MaxSteps"/>.</summary>
    public static bool IsStepsSetting(int? steps) => steps is null or (>= 0 and <= MaxSteps);
    public static readonly string StepsSettingRange = $"0 (none) to {MaxSteps}";

    /// <summary>What a setting means, for the sidecar and specs alike: null for 0 steps (no hardening), <see cref="DefaultSteps"/> when unset.</summary>
    /// <param name="epsilon">The adversary's ε in 1/255 units, as settings give it.</param>
    public static AdversarialHardening? FromSetting(double epsilon, int? steps, int seed) =>
        steps == 0 ? null : new(epsilon / 255, steps ?? DefaultSteps, Seed: seed);

    /// <summary>Every 25th step and the last: the steps whose loss callers report (a line per step would be 600 a member).</summary>
    public bool IsReportStep(int step) => (step + 1) % 25 == 0 || step + 1 == Steps;

    /// <summary>In every hardened file's name: bump it with any change that gives other weights for the same settings (the
    /// adversary's steps, the sampling, the optimiser), so that cached or prepared copies made by older code are made again.</summary>
    public const int Version = 1;

    /// <summary>The hardened copy's file name beside the model's own (<paramref name="modelFileName"/>): it changes with anything that changes the weights.</summary>
    public string FileName(string modelFileName) => string.Create(System.Globalization.CultureInfo.InvariantCulture,
        $"{Path.GetFileNameWithoutExtension(modelFileName)}-hardened-v{Version}-{Math.Round(Epsilon * 255, 6):R}x{Steps}-s{Seed}{(AttackSteps == 3 && BatchSize == 64 && LearningRate == 1e-4 ? "" : $"-k{AttackSteps}b{BatchSize}lr{LearningRate:G3}")}.safetensors");

    /// <summary>What the hardening does, in words (for reports and the server's description).</summary>
    public string Describe() => string.Create(System.Globalization.CultureInfo.InvariantCulture, $"adversarially fine-tuned for {Steps} steps at ε {Epsilon * 255:G3}/255 (hardening)");

    /// <summary>Refuses settings that cannot work, naming the setting.</summary>
    public void Validate()
    {
        if (!(Epsilon > 0 && Epsilon <= 1)) throw new ArgumentOutOfRangeException(nameof(Epsilon), Epsilon, "the hardening adversary's ε must be in (0, 1] (pixel units)");
        if (Steps is < 1 or > MaxSteps) throw new ArgumentOutOfRangeException(nameof(Steps), Steps, $"hardening takes 1 to {MaxSteps} steps");
        if (AttackSteps < 1) throw new ArgumentOutOfRangeException(nameof(AttackSteps), AttackSteps, "the adversary takes at least 1 PGD step");
        if (BatchSize < 2) throw new ArgumentOutOfRangeException(nameof(BatchSize), BatchSize, "a contrastive batch needs at least 2 pairs");
        if (!(LearningRate > 0)) throw new ArgumentOutOfRangeException(nameof(LearningRate), LearningRate, "the learning rate must be positive");
    }

    /// <summary>Fine-tunes <paramref name="model"/> in place on its public recipe's pairs: what the sidecar and attack jobs both harden on.</summary>
    public void Harden(ClipModel model, PublicModel recipe, Device device, Action<int, double>? onStep = null, CancellationToken cancel = default) =>
        Harden(model, recipe.Pairs(model.Config.Vision.ImageSize), new ImageTensors(model.Config.Vision.ImageSize), device, onStep, cancel);

    /// <summary>Fine-tunes <paramref name="model"/> in place; <paramref name="onStep"/> hears each step's loss on the adversarial batch.</summary>
    public void Harden(ClipModel model, IReadOnlyList<CaptionedImage> pairs, ImageTensors pixels, Device device,
        Action<int, double>? onStep = null, CancellationToken cancel = default)
    {
        Validate();
        if (pairs.Count < 2) throw new ArgumentException($"hardening needs at least 2 image–caption pairs, got {pairs.Count}", nameof(pairs));
        // Madry's step: 2.5 ε spread over the steps, so the adversary can cross the ball from its random start.
        var adversary = new NoiseOptimizer(model, new ProtectionOptions
        {
            Method = ProtectionMethod.Uap, Epsilon = Epsilon, StepSize = Math.Min(Epsilon, 2.5 * Epsilon / AttackSteps), PgdSteps = AttackSteps, Seed = Seed,
        });
        using var updater = new SurrogateUpdater(model, LearningRate, weightDecay: 0.2);
        int size = Math.Min(BatchSize, pairs.Count);
        for (int step = 0; step < Steps; step++)
        {
            cancel.ThrowIfCancellationRequested();
            var rng = new Random(Seeds.For(SeedStream.Hardening, Seed, step));
            var batch = Enumerable.Range(0, pairs.Count).OrderBy(_ => rng.Next()).Take(size).Select(i => pairs[i]).ToList();
            Tensor attacked, ids;
            // Built in a scope of its own and moved out of it: the update must run outside any scope (its optimiser's moments).
            using (NewDisposeScope())
            {
                var clean01 = PixelSpace.Unnormalize(pixels.Batch(batch.Select(p => p.Image).ToList(), device));
                ids = TextTensors.Batch(batch.Select(p => p.Captions[rng.Next(p.Captions.Count)]).ToList(), model.Config.Text.ContextLength, device);
                var start = clean01.Plus(RandomStart(clean01.shape, rng).to(device)).Clamped(0, 1).Minus(clean01);
                var (delta, _) = adversary.Run(clean01, start, _ => ids, minimise: false, seedOffset: step);
                attacked = clean01.Plus(delta).MoveToOuterDisposeScope();
                ids = ids.MoveToOuterDisposeScope();
            }
            try
            {
                double loss = updater.Step(() => (attacked, ids));
                onStep?.Invoke(step, loss);
            }
            finally
            {
                attacked.Dispose();
                ids.Dispose();
            }
        }
        model.eval();
    }

    // Uniform in [−ε, ε], drawn on the host so a run repeats on any device.
    Tensor RandomStart(long[] shape, Random rng)
    {
        var values = new float[shape.Aggregate(1L, (a, b) => a * b)];
        for (int i = 0; i < values.Length; i++) values[i] = (float)((2 * rng.NextDouble() - 1) * Epsilon);
        return tensor(values, shape);
    }
}
