using System.Text.Json.Nodes;
using Unlearnable.Clip.Checkpoints;
using static TorchSharp.torch;

namespace Unlearnable.Tests.Shared;

/// <summary>
/// No BERT weights are reachable offline, so tests write a small random BertForMaskedLM
/// checkpoint in Hugging Face's layout (config.json, model.safetensors with HF key names,
/// vocab.txt) whose output bias makes known words the top predictions.
/// </summary>
public static class TinyBert
{
    public static readonly string[] Pieces =
        ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "the", "red", "blue", "green", "circle", "square", "star",
         "two", "of", "photo", "bright", "quiet", "river", "##s", "##ing", "42", ",", "happy", "stone"];

    // Output bias per piece: sub-words, specials and numbers rank first and must be skipped.
    static readonly Dictionary<string, float> Favoured = new() { ["##s"] = 40, ["[UNK]"] = 36, ["42"] = 33, ["bright"] = 30, ["quiet"] = 25, ["river"] = 20 };

    public static string Write(bool legacyLayerNormNames = false, string? drop = null)
    {
        var folder = Path.Combine(TestFolders.New(), "tiny-bert");
        Directory.CreateDirectory(folder);
        const int hidden = 16, intermediate = 32, layers = 2, positions = 40;
        File.WriteAllLines(Path.Combine(folder, "vocab.txt"), Pieces);
        File.WriteAllText(Path.Combine(folder, "config.json"), new JsonObject
        {
            ["vocab_size"] = Pieces.Length, ["hidden_size"] = hidden, ["num_hidden_layers"] = layers, ["num_attention_heads"] = 2,
            ["intermediate_size"] = intermediate, ["max_position_embeddings"] = positions, ["type_vocab_size"] = 2,
            ["hidden_act"] = "gelu", ["layer_norm_eps"] = 1e-12,
        }.ToJsonString());

        random.manual_seed(11);
        var tensors = new List<(string, Tensor)>();
        void Add(string name, params long[] shape) => tensors.Add((name, randn(shape) * 0.02));
        void Norm(string name)
        {
            tensors.Add((name + (legacyLayerNormNames ? ".gamma" : ".weight"), ones(hidden)));
            tensors.Add((name + (legacyLayerNormNames ? ".beta" : ".bias"), zeros(hidden)));
        }
        Add("bert.embeddings.word_embeddings.weight", Pieces.Length, hidden);
        Add("bert.embeddings.position_embeddings.weight", positions, hidden);
        Add("bert.embeddings.token_type_embeddings.weight", 2, hidden);
        Norm("bert.embeddings.LayerNorm");
        for (int l = 0; l < layers; l++)
        {
            string p = $"bert.encoder.layer.{l}.";
            foreach (var m in new[] { "attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense" })
            {
                Add(p + m + ".weight", hidden, hidden);
                Add(p + m + ".bias", hidden);
            }
            Norm(p + "attention.output.LayerNorm");
            Add(p + "intermediate.dense.weight", intermediate, hidden);
            Add(p + "intermediate.dense.bias", intermediate);
            Add(p + "output.dense.weight", hidden, intermediate);
            Add(p + "output.dense.bias", hidden);
            Norm(p + "output.LayerNorm");
        }
        Add("bert.pooler.dense.weight", hidden, hidden);   // present in real exports, unused by the masked LM
        Add("cls.predictions.transform.dense.weight", hidden, hidden);
        Add("cls.predictions.transform.dense.bias", hidden);
        Norm("cls.predictions.transform.LayerNorm");
        tensors.Add(("cls.predictions.bias", tensor(Pieces.Select(p => Favoured.GetValueOrDefault(p)).ToArray())));
        SafeTensors.Write(Path.Combine(folder, "model.safetensors"), tensors.Where(t => t.Item1 != drop));
        return folder;
    }
}
