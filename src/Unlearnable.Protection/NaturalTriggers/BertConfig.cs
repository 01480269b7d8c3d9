using System.Text.Json.Nodes;

namespace Unlearnable.Protection.NaturalTriggers;

/// <summary>The fields of a Hugging Face BERT <c>config.json</c> that the masked-LM forward needs.</summary>
public sealed record BertConfig(int VocabSize, int Hidden, int Layers, int Heads, int Intermediate, int MaxPositions, double LayerNormEps)
{
    public static BertConfig Read(string path)
    {
        JsonObject json;
        try { json = JsonNode.Parse(File.ReadAllText(path))?.AsObject() ?? throw new InvalidDataException($"{path}: not a JSON object"); }
        catch (System.Text.Json.JsonException e) { throw new InvalidDataException($"{path}: not valid JSON: {e.Message}"); }

        int Int(string key) => json[key]?.GetValue<int>() is int v && v > 0 ? v : throw new InvalidDataException($"{path}: '{key}' is missing or not a positive integer");
        string activation = json["hidden_act"]?.GetValue<string>() ?? "gelu";
        if (activation != "gelu") throw new InvalidDataException($"{path}: hidden_act '{activation}' is not supported (BERT uses gelu)");
        var config = new BertConfig(Int("vocab_size"), Int("hidden_size"), Int("num_hidden_layers"), Int("num_attention_heads"),
            Int("intermediate_size"), Int("max_position_embeddings"), json["layer_norm_eps"]?.GetValue<double>() ?? 1e-12);
        if (config.Hidden % config.Heads != 0) throw new InvalidDataException($"{path}: hidden_size {config.Hidden} is not divisible by {config.Heads} heads");
        return config;
    }
}
