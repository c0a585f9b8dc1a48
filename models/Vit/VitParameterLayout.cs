using NativeSparsity.Models.Bert;

using NativeSparsity.Models.Transformer;

namespace NativeSparsity.Models.Vit;

/// <summary>
/// Which heads a ViT carries: an image classifier on the final [CLS] row (HF ViTForImageClassification,
/// "classifier") and/or masked-patch prediction (SimMIM-style: "vit.embeddings.mask_token" and a
/// linear pixel decoder "decoder.0", as HF ViTForMaskedImageModeling with encoder_stride = patch size).
/// </summary>
public sealed record VitHeads(int ClassifierLabels = 0, bool MaskedPatches = false)
{
    public static VitHeads Classification(int labels) => new(ClassifierLabels: labels);
    public static readonly VitHeads MaskedImageModeling = new(MaskedPatches: true);
}

/// <summary>
/// Places every ViT parameter in one flat buffer under its Hugging Face name and shape. Three
/// contiguous segments as <see cref="BertParameterLayout"/>: the prunable matrices first (six per
/// layer, Q, K, V adjacent for the fused [3C, C] projection, no padding), then the other decayed
/// tensors (patch projection, [CLS], position embeddings, mask token, classifier and decoder
/// weights), then biases and LayerNorm parameters (not decayed).
/// <para>Parameter count, c = hidden, I = intermediate, D = patch dim, P = patches, L = layers:
/// L(4c² + 2cI + I + 9c) + cD + c (projection) + c ([CLS]) + (P+1)c (positions) + 2c (final LN)
/// + labels(c + 1) with a classifier + c + D(c + 1) with masked-patch prediction.
/// Prunable: L(4c² + 2cI).</para>
/// </summary>
public sealed class VitParameterLayout : IFlatParameterLayout
{
    private const int Align = 16;
    private readonly List<ParameterSlot> _slots = new();
    private readonly Dictionary<string, ParameterSlot> _byName = new(StringComparer.Ordinal);

    public const string PatchProjection = "vit.embeddings.patch_embeddings.projection";
    public const string ClsToken = "vit.embeddings.cls_token";
    public const string PositionEmbeddings = "vit.embeddings.position_embeddings";
    public const string MaskToken = "vit.embeddings.mask_token";
    public const string FinalLayerNorm = "vit.layernorm";
    public const string Classifier = "classifier";
    public const string Decoder = "decoder.0";

    public VitParameterLayout(VitConfig config, VitHeads heads)
    {
        config.Validate();
        if (heads.ClassifierLabels < 0) throw new ArgumentException($"ViT heads: classifier labels must be 0 (no classifier) or positive, got {heads.ClassifierLabels}");
        if (heads.ClassifierLabels == 1) throw new ArgumentException("ViT heads: a classifier needs at least 2 labels (regression is not supported)");
        Config = config;
        Heads = heads;
        int c = config.HiddenSize, inter = config.IntermediateSize, p = config.PatchSize, ch = config.NumChannels, d = config.PatchDim;
        long offset = 0;

        void Add(string name, ParameterGroup group, params int[] shape)
        {
            if (group != ParameterGroup.Prunable) offset = (offset + Align - 1) / Align * Align;
            AddPacked(name, group, shape);
        }
        void AddPacked(string name, ParameterGroup group, params int[] shape)
        {
            var slot = new ParameterSlot(name, offset, shape, group);
            _slots.Add(slot);
            _byName.Add(name, slot);
            offset += slot.Length;
        }

        // Segment 1: prunable matrices, contiguous.
        for (int i = 0; i < config.NumHiddenLayers; i++)
        {
            string pre = LayerPrefix(i);
            Add(pre + "attention.attention.query.weight", ParameterGroup.Prunable, c, c);
            Add(pre + "attention.attention.key.weight", ParameterGroup.Prunable, c, c);
            Add(pre + "attention.attention.value.weight", ParameterGroup.Prunable, c, c);
            Add(pre + "attention.output.dense.weight", ParameterGroup.Prunable, c, c);
            Add(pre + "intermediate.dense.weight", ParameterGroup.Prunable, inter, c);
            Add(pre + "output.dense.weight", ParameterGroup.Prunable, c, inter);
        }
        PrunableLength = offset;

        // Segment 2: other decayed tensors, in HF's shapes.
        offset = (offset + Align - 1) / Align * Align;
        DecayedStart = offset;
        Add(PatchProjection + ".weight", ParameterGroup.Decayed, c, ch, p, p);
        Add(ClsToken, ParameterGroup.Decayed, 1, 1, c);
        Add(PositionEmbeddings, ParameterGroup.Decayed, 1, config.SeqLength, c);
        if (heads.MaskedPatches) Add(MaskToken, ParameterGroup.Decayed, 1, 1, c);
        if (heads.ClassifierLabels > 0) Add(Classifier + ".weight", ParameterGroup.Decayed, heads.ClassifierLabels, c);
        if (heads.MaskedPatches) Add(Decoder + ".weight", ParameterGroup.Decayed, d, c, 1, 1);
        DecayedLength = offset - DecayedStart;

        // Segment 3: biases and LayerNorm parameters. Q, K, V biases back to back (one [3C] bias).
        offset = (offset + Align - 1) / Align * Align;
        NotDecayedStart = offset;
        Add(PatchProjection + ".bias", ParameterGroup.NotDecayed, c);
        for (int i = 0; i < config.NumHiddenLayers; i++)
        {
            string pre = LayerPrefix(i);
            Add(pre + "attention.attention.query.bias", ParameterGroup.NotDecayed, c);
            AddPacked(pre + "attention.attention.key.bias", ParameterGroup.NotDecayed, c);
            AddPacked(pre + "attention.attention.value.bias", ParameterGroup.NotDecayed, c);
            Add(pre + "attention.output.dense.bias", ParameterGroup.NotDecayed, c);
            Add(pre + "layernorm_before.weight", ParameterGroup.NotDecayed, c);
            Add(pre + "layernorm_before.bias", ParameterGroup.NotDecayed, c);
            Add(pre + "intermediate.dense.bias", ParameterGroup.NotDecayed, inter);
            Add(pre + "output.dense.bias", ParameterGroup.NotDecayed, c);
            Add(pre + "layernorm_after.weight", ParameterGroup.NotDecayed, c);
            Add(pre + "layernorm_after.bias", ParameterGroup.NotDecayed, c);
        }
        Add(FinalLayerNorm + ".weight", ParameterGroup.NotDecayed, c);
        Add(FinalLayerNorm + ".bias", ParameterGroup.NotDecayed, c);
        if (heads.ClassifierLabels > 0) Add(Classifier + ".bias", ParameterGroup.NotDecayed, heads.ClassifierLabels);
        if (heads.MaskedPatches) Add(Decoder + ".bias", ParameterGroup.NotDecayed, d);
        NotDecayedLength = offset - NotDecayedStart;
        TotalLength = (offset + Align - 1) / Align * Align;
    }

    public static string LayerPrefix(int layer) => $"vit.encoder.layer.{layer}.";

    public VitConfig Config { get; }
    public VitHeads Heads { get; }
    public IReadOnlyList<ParameterSlot> Slots => _slots;

    /// <summary>Elements in the flat buffer, alignment padding included.</summary>
    public long TotalLength { get; }

    /// <summary>The prunable span is [0, PrunableLength).</summary>
    public long PrunableLength { get; }
    public long DecayedStart { get; }
    public long DecayedLength { get; }
    public long NotDecayedStart { get; }
    public long NotDecayedLength { get; }

    /// <summary>Parameters actually held (padding excluded).</summary>
    public long ParameterCount => _slots.Sum(s => s.Length);

    /// <summary>The formula in the class summary, for checking the layout against it.</summary>
    public static long ExpectedParameterCount(VitConfig cfg, VitHeads heads)
    {
        long c = cfg.HiddenSize, inter = cfg.IntermediateSize, d = cfg.PatchDim;
        long n = cfg.NumHiddenLayers * (4 * c * c + 2 * c * inter + inter + 9 * c)
                 + c * d + c + c + (cfg.NumPatches + 1) * c + 2 * c;
        if (heads.ClassifierLabels > 0) n += heads.ClassifierLabels * (c + 1);
        if (heads.MaskedPatches) n += c + d * (c + 1);
        return n;
    }

    public ParameterSlot this[string name] =>
        _byName.TryGetValue(name, out var s) ? s : throw new KeyNotFoundException($"this ViT has no parameter named '{name}'");

    public bool Contains(string name) => _byName.ContainsKey(name);

    /// <summary>The prunable matrices in span order: (name, offset, rows, cols).</summary>
    public IEnumerable<(string Name, long Offset, int Rows, int Cols)> PrunableMatrices =>
        _slots.Where(s => s.Group == ParameterGroup.Prunable).Select(s => (s.Name, s.Offset, s.Shape[0], s.Shape[1]));
}
