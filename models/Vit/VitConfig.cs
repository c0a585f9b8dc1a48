using System.Text.Json;
using System.Text.Json.Nodes;

namespace NativeSparsity.Models.Vit;

/// <summary>
/// Vision-transformer hyper-parameters with Hugging Face ViTConfig's config.json keys. Defaults are
/// HF's ViTConfig defaults (ViT-B/16 at 224 px: layer_norm_eps 1e-12, dropout 0.0,
/// initializer_range 0.02). A patch is flattened channel-major, (c, y, x): element
/// c*p*p + y*p + x, the row-major order of HF's conv weight [hidden, C, p, p].
/// </summary>
public sealed record VitConfig
{
    public int ImageSize { get; init; } = 224;
    public int PatchSize { get; init; } = 16;
    public int NumChannels { get; init; } = 3;
    public int HiddenSize { get; init; } = 768;
    public int NumHiddenLayers { get; init; } = 12;
    public int NumAttentionHeads { get; init; } = 12;
    public int IntermediateSize { get; init; } = 3072;
    public float HiddenDropoutProb { get; init; } = 0f;
    public float AttentionProbsDropoutProb { get; init; } = 0f;
    public float LayerNormEps { get; init; } = 1e-12f;
    public float InitializerRange { get; init; } = 0.02f;

    public int HeadDim => HiddenSize / NumAttentionHeads;
    public int PatchesPerSide => ImageSize / PatchSize;
    public int NumPatches => PatchesPerSide * PatchesPerSide;
    /// <summary>Elements of one flattened patch: channels * patch * patch.</summary>
    public int PatchDim => NumChannels * PatchSize * PatchSize;
    /// <summary>Tokens per image: the patches plus [CLS].</summary>
    public int SeqLength => NumPatches + 1;

    /// <summary>Preset names: tiny and small are sized for 2 CPU cores on 28x28 grey images, base is ViT-B/16.</summary>
    public static readonly IReadOnlyList<string> PresetNames = new[] { "tiny", "small", "base" };

    /// <summary>
    /// tiny: 28 px, patch 4 (49 patches + CLS), 1 channel, hidden 128, 4 layers, 4 heads, FFN 512.
    /// small: 28 px, patch 4, 1 channel, hidden 256, 6 layers, 4 heads, FFN 1024.
    /// base: ViT-B/16 — 224 px, patch 16, 3 channels, hidden 768, 12 layers, 12 heads, FFN 3072.
    /// Image size, patch size and channels may be overridden (e.g. base on 28x28x1 with patch 4).
    /// </summary>
    public static VitConfig FromPreset(string name, int? imageSize = null, int? patchSize = null, int? numChannels = null)
    {
        var cfg = name.ToLowerInvariant() switch
        {
            "tiny" => new VitConfig { ImageSize = 28, PatchSize = 4, NumChannels = 1, HiddenSize = 128, NumHiddenLayers = 4, NumAttentionHeads = 4, IntermediateSize = 512 },
            "small" => new VitConfig { ImageSize = 28, PatchSize = 4, NumChannels = 1, HiddenSize = 256, NumHiddenLayers = 6, NumAttentionHeads = 4, IntermediateSize = 1024 },
            "base" => new VitConfig(),
            _ => throw new ArgumentException($"unknown ViT preset '{name}'; expected one of {string.Join(", ", PresetNames)}", nameof(name)),
        };
        cfg = cfg with
        {
            ImageSize = imageSize ?? cfg.ImageSize, PatchSize = patchSize ?? cfg.PatchSize, NumChannels = numChannels ?? cfg.NumChannels,
        };
        cfg.Validate();
        return cfg;
    }

    /// <summary>Throws with the offending key unless the shape is usable.</summary>
    public void Validate()
    {
        void Positive(int v, string key) { if (v <= 0) throw new ArgumentException($"ViT config: {key} must be positive, got {v}"); }
        Positive(ImageSize, "image_size"); Positive(PatchSize, "patch_size"); Positive(NumChannels, "num_channels");
        Positive(HiddenSize, "hidden_size"); Positive(NumHiddenLayers, "num_hidden_layers");
        Positive(NumAttentionHeads, "num_attention_heads"); Positive(IntermediateSize, "intermediate_size");
        if (ImageSize % PatchSize != 0)
            throw new ArgumentException($"ViT config: image_size {ImageSize} is not a multiple of patch_size {PatchSize}");
        if (HiddenSize % NumAttentionHeads != 0)
            throw new ArgumentException($"ViT config: hidden_size {HiddenSize} is not a multiple of num_attention_heads {NumAttentionHeads}");
        if (HiddenDropoutProb is < 0 or >= 1 || AttentionProbsDropoutProb is < 0 or >= 1)
            throw new ArgumentException($"ViT config: hidden_dropout_prob ({HiddenDropoutProb}) and attention_probs_dropout_prob ({AttentionProbsDropoutProb}) must lie in [0, 1)");
        if (!(LayerNormEps > 0)) throw new ArgumentException($"ViT config: layer_norm_eps must be positive, got {LayerNormEps}");
        if (!(InitializerRange > 0)) throw new ArgumentException($"ViT config: initializer_range must be positive, got {InitializerRange}");
    }

    public JsonObject ToJson() => new()
    {
        ["architectures"] = new JsonArray("ViTModel"),
        ["model_type"] = "vit",
        ["image_size"] = ImageSize, ["patch_size"] = PatchSize, ["num_channels"] = NumChannels,
        ["hidden_size"] = HiddenSize, ["num_hidden_layers"] = NumHiddenLayers, ["num_attention_heads"] = NumAttentionHeads,
        ["intermediate_size"] = IntermediateSize, ["hidden_act"] = "gelu",
        ["hidden_dropout_prob"] = HiddenDropoutProb, ["attention_probs_dropout_prob"] = AttentionProbsDropoutProb,
        ["layer_norm_eps"] = LayerNormEps, ["initializer_range"] = InitializerRange,
        ["qkv_bias"] = true, ["encoder_stride"] = PatchSize,
    };

    public string ToJsonString() => ToJson().ToJsonString(new JsonSerializerOptions { WriteIndented = true });

    /// <summary>Reads an HF ViT config.json; unknown keys are ignored, an unsupported setting is an error naming the file.</summary>
    public static VitConfig FromJson(string json, string source)
    {
        JsonNode? root;
        try { root = JsonNode.Parse(json); }
        catch (JsonException e) { throw new InvalidDataException($"{source}: not valid JSON ({e.Message})", e); }
        if (root is not JsonObject o) throw new InvalidDataException($"{source}: expected a JSON object");
        try
        {
            int Int(string key, int fallback) => o[key] is JsonValue v ? v.GetValue<int>() : fallback;
            float Float(string key, float fallback) => o[key] is JsonValue v ? (float)v.GetValue<double>() : fallback;
            string act = o["hidden_act"]?.GetValue<string>() ?? "gelu";
            if (act is not ("gelu" or "gelu_python"))
                throw new InvalidDataException($"{source}: hidden_act '{act}' is not supported (this engine implements erf GELU, 'gelu')");
            if (o["qkv_bias"] is JsonValue qb && !qb.GetValue<bool>())
                throw new InvalidDataException($"{source}: qkv_bias false is not supported (the fused projection has a bias)");
            var d = new VitConfig();
            var config = new VitConfig
            {
                ImageSize = Int("image_size", d.ImageSize), PatchSize = Int("patch_size", d.PatchSize), NumChannels = Int("num_channels", d.NumChannels),
                HiddenSize = Int("hidden_size", d.HiddenSize), NumHiddenLayers = Int("num_hidden_layers", d.NumHiddenLayers),
                NumAttentionHeads = Int("num_attention_heads", d.NumAttentionHeads), IntermediateSize = Int("intermediate_size", d.IntermediateSize),
                HiddenDropoutProb = Float("hidden_dropout_prob", d.HiddenDropoutProb),
                AttentionProbsDropoutProb = Float("attention_probs_dropout_prob", d.AttentionProbsDropoutProb),
                LayerNormEps = Float("layer_norm_eps", d.LayerNormEps), InitializerRange = Float("initializer_range", d.InitializerRange),
            };
            config.Validate();
            return config;
        }
        catch (ArgumentException e) { throw new InvalidDataException($"{source}: {e.Message}", e); }
        catch (Exception e) when (e is InvalidOperationException or FormatException)
        {
            throw new InvalidDataException($"{source}: a ViT config value has the wrong type ({e.Message})", e);
        }
    }
}
