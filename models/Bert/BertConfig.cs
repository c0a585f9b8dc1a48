using System.Text.Json;
using System.Text.Json.Nodes;

namespace NativeSparsity.Models.Bert;

/// <summary>
/// BERT hyper-parameters with Hugging Face's config.json key names, so a config written here loads
/// in `transformers` and an HF config loads here. Presets follow Turc et al. (2019): heads =
/// hidden/64, intermediate = 4 x hidden.
/// </summary>
public sealed record BertConfig
{
    public int VocabSize { get; init; } = 30522;
    public int HiddenSize { get; init; } = 768;
    public int NumHiddenLayers { get; init; } = 12;
    public int NumAttentionHeads { get; init; } = 12;
    public int IntermediateSize { get; init; } = 3072;
    public int MaxPositionEmbeddings { get; init; } = 512;
    public int TypeVocabSize { get; init; } = 2;
    public float HiddenDropoutProb { get; init; } = 0.1f;
    public float AttentionProbsDropoutProb { get; init; } = 0.1f;
    public float LayerNormEps { get; init; } = 1e-12f;
    public float InitializerRange { get; init; } = 0.02f;
    public int PadTokenId { get; init; }

    public int HeadDim => HiddenSize / NumAttentionHeads;

    public static readonly IReadOnlyDictionary<string, (int Layers, int Hidden)> Presets =
        new Dictionary<string, (int, int)>(StringComparer.OrdinalIgnoreCase)
        {
            ["tiny"] = (2, 128), ["mini"] = (4, 256), ["small"] = (4, 512),
            ["medium"] = (8, 512), ["base"] = (12, 768), ["large"] = (24, 1024),
        };

    /// <summary>A preset by name (tiny, mini, small, medium, base, large) with the given vocabulary.</summary>
    public static BertConfig FromPreset(string name, int vocabSize = 30522, int maxPositions = 512)
    {
        if (!Presets.TryGetValue(name, out var p))
            throw new ArgumentException($"unknown BERT preset '{name}'; expected one of {string.Join(", ", Presets.Keys)}", nameof(name));
        return new BertConfig
        {
            VocabSize = vocabSize, HiddenSize = p.Hidden, NumHiddenLayers = p.Layers,
            NumAttentionHeads = p.Hidden / 64, IntermediateSize = 4 * p.Hidden, MaxPositionEmbeddings = maxPositions,
        };
    }

    /// <summary>Throws with the offending key unless the shape is usable.</summary>
    public void Validate()
    {
        void Positive(int v, string key) { if (v <= 0) throw new ArgumentException($"BERT config: {key} must be positive, got {v}"); }
        Positive(VocabSize, "vocab_size"); Positive(HiddenSize, "hidden_size"); Positive(NumHiddenLayers, "num_hidden_layers");
        Positive(NumAttentionHeads, "num_attention_heads"); Positive(IntermediateSize, "intermediate_size");
        Positive(MaxPositionEmbeddings, "max_position_embeddings"); Positive(TypeVocabSize, "type_vocab_size");
        if (HiddenSize % NumAttentionHeads != 0)
            throw new ArgumentException($"BERT config: hidden_size {HiddenSize} is not a multiple of num_attention_heads {NumAttentionHeads}");
        if (HiddenDropoutProb is < 0 or >= 1 || AttentionProbsDropoutProb is < 0 or >= 1)
            throw new ArgumentException("BERT config: dropout probabilities must lie in [0, 1)");
    }

    public JsonObject ToJson() => new()
    {
        ["architectures"] = new JsonArray("BertForPreTraining"),
        ["model_type"] = "bert",
        ["vocab_size"] = VocabSize, ["hidden_size"] = HiddenSize, ["num_hidden_layers"] = NumHiddenLayers,
        ["num_attention_heads"] = NumAttentionHeads, ["intermediate_size"] = IntermediateSize,
        ["hidden_act"] = "gelu", ["hidden_dropout_prob"] = HiddenDropoutProb,
        ["attention_probs_dropout_prob"] = AttentionProbsDropoutProb,
        ["max_position_embeddings"] = MaxPositionEmbeddings, ["type_vocab_size"] = TypeVocabSize,
        ["initializer_range"] = InitializerRange, ["layer_norm_eps"] = LayerNormEps,
        ["pad_token_id"] = PadTokenId, ["position_embedding_type"] = "absolute",
    };

    /// <summary>Reads an HF BERT config.json; unknown keys are ignored, a wrong activation or type is an error naming the file.</summary>
    public static BertConfig FromJson(string json, string source)
    {
        JsonNode? root;
        try { root = JsonNode.Parse(json); }
        catch (JsonException e) { throw new InvalidDataException($"{source}: not valid JSON ({e.Message})", e); }
        if (root is not JsonObject o) throw new InvalidDataException($"{source}: expected a JSON object");
        int Int(string key, int fallback) => o[key] is JsonValue v ? v.GetValue<int>() : fallback;
        float Float(string key, float fallback) => o[key] is JsonValue v ? (float)v.GetValue<double>() : fallback;
        string act = o["hidden_act"]?.GetValue<string>() ?? "gelu";
        if (act is not ("gelu" or "gelu_python"))
            throw new InvalidDataException($"{source}: hidden_act '{act}' is not supported (this engine implements erf GELU, 'gelu')");
        string posType = o["position_embedding_type"]?.GetValue<string>() ?? "absolute";
        if (posType != "absolute")
            throw new InvalidDataException($"{source}: position_embedding_type '{posType}' is not supported (only 'absolute')");
        var d = new BertConfig();
        var config = new BertConfig
        {
            VocabSize = Int("vocab_size", d.VocabSize), HiddenSize = Int("hidden_size", d.HiddenSize),
            NumHiddenLayers = Int("num_hidden_layers", d.NumHiddenLayers), NumAttentionHeads = Int("num_attention_heads", d.NumAttentionHeads),
            IntermediateSize = Int("intermediate_size", d.IntermediateSize), MaxPositionEmbeddings = Int("max_position_embeddings", d.MaxPositionEmbeddings),
            TypeVocabSize = Int("type_vocab_size", d.TypeVocabSize), HiddenDropoutProb = Float("hidden_dropout_prob", d.HiddenDropoutProb),
            AttentionProbsDropoutProb = Float("attention_probs_dropout_prob", d.AttentionProbsDropoutProb),
            LayerNormEps = Float("layer_norm_eps", d.LayerNormEps), InitializerRange = Float("initializer_range", d.InitializerRange),
            PadTokenId = Int("pad_token_id", 0),
        };
        try { config.Validate(); }
        catch (ArgumentException e) { throw new InvalidDataException($"{source}: {e.Message}", e); }
        return config;
    }

    public string ToJsonString() => ToJson().ToJsonString(new JsonSerializerOptions { WriteIndented = true });
}
