using TorchSharp;
using Unlearnable.Clip.Checkpoints;
using Unlearnable.Clip.Model;
using static TorchSharp.torch;

namespace Unlearnable.Training;

/// <summary>
/// AdamW with decoupled weight decay (Loshchilov &amp; Hutter), as torch.optim.AdamW:
/// θ ← θ(1 − η·λ); m ← β₁m + (1 − β₁)g; v ← β₂v + (1 − β₂)g²;
/// θ ← θ − η/(1 − β₁ᵗ) · m / (√v / √(1 − β₂ᵗ) + ε).
/// Written here rather than taken from TorchSharp because TorchSharp's optimisers hand libtorch
/// on-the-fly Scalars that a GC on another thread can free mid-call (see KeptScalars); every
/// number here stays referenced until libtorch is done with it, and every temporary tensor lives
/// in a dispose scope. Moments are created on the first step, outside that scope.
/// </summary>
public sealed class ClipAdamW : IDisposable
{
    sealed record Slot(Tensor Parameter, bool Decays)
    {
        public Tensor? M, V;
    }

    readonly List<Slot> _slots;
    readonly double _beta1, _beta2, _epsilon, _weightDecay;

    public double LearningRate { get; set; }
    public long Steps { get; private set; }

    /// <summary>Decays weights only (not gains, biases or the logit scale), as open_clip does.</summary>
    public ClipAdamW(ClipModel model, double learningRate, double weightDecay, double beta1 = 0.9, double beta2 = 0.98, double epsilon = 1e-6)
    {
        var (decay, noDecay) = model.WeightDecayGroups();
        _slots = [.. decay.Select(p => new Slot(p, true)), .. noDecay.Select(p => new Slot(p, false))];
        (LearningRate, _weightDecay, _beta1, _beta2, _epsilon) = (learningRate, weightDecay, beta1, beta2, epsilon);
    }

    public void ZeroGrad()
    {
        using var scope = NewDisposeScope();
        foreach (var slot in _slots) slot.Parameter.grad?.zero_();
    }

    public void Step()
    {
        Steps++;
        double lr = LearningRate, correction1 = 1 - Math.Pow(_beta1, Steps), correction2 = 1 - Math.Pow(_beta2, Steps);
        using Scalar decay = (1 - lr * _weightDecay).ToScalar(), beta1 = _beta1.ToScalar(), beta2 = _beta2.ToScalar(),
            gradWeight = (1 - _beta1).ToScalar(), squareWeight = (1 - _beta2).ToScalar(),
            rootCorrection2 = Math.Sqrt(correction2).ToScalar(), epsilon = _epsilon.ToScalar(), stepSize = (-lr / correction1).ToScalar();
        using var _ = no_grad();
        foreach (var slot in _slots)
        {
            using var scope = NewDisposeScope();
            var g = slot.Parameter.grad;
            if (g is null) continue;
            if (slot.M is null)
            {
                slot.M = zeros_like(slot.Parameter).DetachFromDisposeScope();
                slot.V = zeros_like(slot.Parameter).DetachFromDisposeScope();
            }
            if (slot.Decays && _weightDecay != 0) slot.Parameter.mul_(decay);
            slot.M.mul_(beta1).add_(g, gradWeight);
            slot.V!.mul_(beta2).addcmul_(g, g, squareWeight);
            var denominator = slot.V.sqrt().div_(rootCorrection2).add_(epsilon, Clip.Runtime.KeptScalars.One);
            slot.Parameter.addcdiv_(slot.M, denominator, stepSize);
        }
    }

    /// <summary>Moments and step count, as safetensors (parameter order is the model's).</summary>
    public void Save(string path)
    {
        var tensors = new List<(string, Tensor)>();
        for (int i = 0; i < _slots.Count; i++)
            if (_slots[i].M is { } m) tensors.AddRange([($"m.{i}", m), ($"v.{i}", _slots[i].V!)]);
        SafeTensors.Write(path, tensors, new Dictionary<string, string> { ["steps"] = Steps.ToString(System.Globalization.CultureInfo.InvariantCulture), ["slots"] = _slots.Count.ToString(System.Globalization.CultureInfo.InvariantCulture) });
    }

    public void Load(string path)
    {
        SafeTensors.Contents contents;
        try { contents = SafeTensors.Read(path); }
        catch (InvalidDataException e)
        {
            // Work folders from before ClipAdamW hold TorchSharp's optimiser format.
            throw new InvalidDataException($"{e.Message}. The optimiser state is not in this version's format (older runs saved TorchSharp's); " +
                $"delete {path} to resume with fresh optimiser moments, or start the run in a new folder.", e);
        }
        if (!contents.Metadata.TryGetValue("slots", out var slots) || slots != _slots.Count.ToString(System.Globalization.CultureInfo.InvariantCulture))
            throw new InvalidDataException($"{path}: optimiser state for {slots ?? "an unknown number of"} parameters, the model has {_slots.Count}");
        Steps = long.Parse(contents.Metadata["steps"], System.Globalization.CultureInfo.InvariantCulture);
        for (int i = 0; i < _slots.Count; i++)
        {
            if (!contents.Tensors.TryGetValue($"m.{i}", out var m)) continue;
            var p = _slots[i].Parameter;
            if (!m.shape.SequenceEqual(p.shape)) throw new InvalidDataException($"{path}: moment {i} is {SafeTensors.FormatShape(m.shape)}, the parameter is {SafeTensors.FormatShape(p.shape)}");
            _slots[i].M?.Dispose();
            _slots[i].V?.Dispose();
            _slots[i].M = m.to(p.device);
            _slots[i].V = contents.Tensors[$"v.{i}"].to(p.device);
        }
    }

    public void Dispose()
    {
        foreach (var slot in _slots)
        {
            slot.M?.Dispose();
            slot.V?.Dispose();
        }
    }
}
