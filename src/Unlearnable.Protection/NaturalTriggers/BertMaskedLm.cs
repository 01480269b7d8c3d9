using Unlearnable.Clip.Checkpoints;
using Unlearnable.Clip.Runtime;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Unlearnable.Protection.NaturalTriggers;

/// <summary>
/// BERT's masked-language-model forward (BertForMaskedLM, post-LN encoder), inference only,
/// read straight from a Hugging Face checkpoint's tensors by their names:
/// h₀ = LN(word + position + type₀); per layer h = LN(h + O·attn(h)), h = LN(h + W₂·gelu(W₁h));
/// logits = (LN(gelu(T·h))) · wordᵀ + b.
/// </summary>
public sealed class BertMaskedLm : IDisposable
{
    public BertConfig Config { get; }
    readonly Dictionary<string, Tensor> _w;

    BertMaskedLm(BertConfig config, Dictionary<string, Tensor> weights)
    {
        Config = config;
        _w = weights;
    }

    /// <summary>Loads <c>model.safetensors</c> + <c>config.json</c> from a bert-base-uncased style folder.</summary>
    public static BertMaskedLm Load(string folder, Device device)
    {
        var config = BertConfig.Read(Path.Combine(folder, "config.json"));
        string weightsPath = Path.Combine(folder, "model.safetensors");
        if (!File.Exists(weightsPath)) throw new FileNotFoundException($"{folder} has no model.safetensors (convert pytorch_model.bin to safetensors first)", weightsPath);
        var raw = SafeTensors.Read(weightsPath).Tensors;
        var weights = new Dictionary<string, Tensor>();
        foreach (var (name, t) in raw)
            weights[Canonical(name)] = t.to_type(float32).to(device);
        var model = new BertMaskedLm(config, weights);
        model.CheckShapes(weightsPath);
        return model;
    }

    // Old Google exports name LayerNorm parameters gamma/beta; some drop the "bert." prefix.
    static string Canonical(string name)
    {
        if (name.EndsWith(".gamma", StringComparison.Ordinal)) name = name[..^6] + ".weight";
        else if (name.EndsWith(".beta", StringComparison.Ordinal)) name = name[..^5] + ".bias";
        if (name.StartsWith("embeddings.", StringComparison.Ordinal) || name.StartsWith("encoder.", StringComparison.Ordinal)) name = "bert." + name;
        if (name == "cls.predictions.decoder.bias") name = "cls.predictions.bias";
        return name;
    }

    void CheckShapes(string source)
    {
        int h = Config.Hidden, i = Config.Intermediate;
        var expected = new List<(string, long[])>
        {
            ("bert.embeddings.word_embeddings.weight", [Config.VocabSize, h]),
            ("bert.embeddings.position_embeddings.weight", [Config.MaxPositions, h]),
            ("bert.embeddings.LayerNorm.weight", [h]), ("bert.embeddings.LayerNorm.bias", [h]),
            ("cls.predictions.transform.dense.weight", [h, h]), ("cls.predictions.transform.dense.bias", [h]),
            ("cls.predictions.transform.LayerNorm.weight", [h]), ("cls.predictions.transform.LayerNorm.bias", [h]),
            ("cls.predictions.bias", [Config.VocabSize]),
        };
        for (int l = 0; l < Config.Layers; l++)
        {
            string p = $"bert.encoder.layer.{l}.";
            foreach (var m in new[] { "attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense" })
                expected.AddRange([(p + m + ".weight", [h, h]), (p + m + ".bias", [h])]);
            expected.AddRange([
                (p + "attention.output.LayerNorm.weight", [h]), (p + "attention.output.LayerNorm.bias", [h]),
                (p + "intermediate.dense.weight", [i, h]), (p + "intermediate.dense.bias", [i]),
                (p + "output.dense.weight", [h, i]), (p + "output.dense.bias", [h]),
                (p + "output.LayerNorm.weight", [h]), (p + "output.LayerNorm.bias", [h])]);
        }
        var missing = expected.Where(e => !_w.ContainsKey(e.Item1)).Select(e => e.Item1).ToList();
        if (missing.Count > 0)
            throw new InvalidDataException($"{source}: not a BERT masked-LM checkpoint: missing {string.Join(", ", missing.Take(5))}" +
                (missing.Count > 5 ? $" and {missing.Count - 5} more" : "") + " (a BertForMaskedLM export such as bert-base-uncased is needed)");
        foreach (var (name, shape) in expected)
            if (!_w[name].shape.SequenceEqual(shape))
                throw new InvalidDataException($"{source}: '{name}' is {SafeTensors.FormatShape(_w[name].shape)}, config.json implies {SafeTensors.FormatShape(shape)}");
    }

    /// <summary>Vocabulary logits [b, n, vocab] for WordPiece ids [b, n] with padding mask [b, n] (true = real token).</summary>
    public Tensor Logits(Tensor ids, Tensor attends)
    {
        using var _ = no_grad();
        long n = ids.shape[1];
        var positions = KeptScalars.Range(n, ids.device);
        var x = W("bert.embeddings.word_embeddings.weight").index_select(0, ids.flatten()).view(ids.shape[0], n, Config.Hidden)
            .Plus(W("bert.embeddings.position_embeddings.weight").index_select(0, positions));
        if (_w.TryGetValue("bert.embeddings.token_type_embeddings.weight", out var types)) x = x.Plus(types[0]);
        x = Norm(x, "bert.embeddings.LayerNorm");
        // Additive mask: padded keys get a large negative score (not −∞, which gives NaN on all-pad rows).
        var mask = attends.logical_not().to_type(float32).Times(-1e9).view(ids.shape[0], 1, 1, n);
        for (int l = 0; l < Config.Layers; l++) x = Layer(x, mask, $"bert.encoder.layer.{l}.");
        var t = Norm(functional.gelu(Dense(x, "cls.predictions.transform.dense")), "cls.predictions.transform.LayerNorm");
        return functional.linear(t, W("bert.embeddings.word_embeddings.weight"), W("cls.predictions.bias"));
    }

    Tensor Layer(Tensor x, Tensor mask, string p)
    {
        long b = x.shape[0], n = x.shape[1];
        int heads = Config.Heads, d = Config.Hidden / heads;
        Tensor Split(Tensor t) => t.view(b, n, heads, d).transpose(1, 2);
        var q = Split(Dense(x, p + "attention.self.query"));
        var k = Split(Dense(x, p + "attention.self.key"));
        var v = Split(Dense(x, p + "attention.self.value"));
        var attended = functional.scaled_dot_product_attention(q, k, v, mask).transpose(1, 2).reshape(b, n, Config.Hidden);
        x = Norm(x.Plus(Dense(attended, p + "attention.output.dense")), p + "attention.output.LayerNorm");
        var hidden = Dense(functional.gelu(Dense(x, p + "intermediate.dense")), p + "output.dense");
        return Norm(x.Plus(hidden), p + "output.LayerNorm");
    }

    Tensor W(string name) => _w[name];

    Tensor Dense(Tensor x, string name) => functional.linear(x, W(name + ".weight"), W(name + ".bias"));

    Tensor Norm(Tensor x, string name) => functional.layer_norm(x, [Config.Hidden], W(name + ".weight"), W(name + ".bias"), Config.LayerNormEps);

    public void Dispose()
    {
        foreach (var t in _w.Values) t.Dispose();
        _w.Clear();
    }
}
