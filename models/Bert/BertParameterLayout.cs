using NativeSparsity.Models.Transformer;

namespace NativeSparsity.Models.Bert;

/// <summary>Which heads a model carries; they decide which HF names exist.</summary>
public sealed record BertHeads(bool MaskedLm = true, bool NextSentence = false, bool Pooler = true, int ClassifierLabels = 0)
{
    public static readonly BertHeads PreTraining = new(MaskedLm: true, NextSentence: false, Pooler: true);
    public static BertHeads SequenceClassification(int labels) => new(MaskedLm: false, NextSentence: false, Pooler: true, ClassifierLabels: labels);
}

/// <summary>One named parameter: an element offset and shape inside the flat buffer.</summary>
public sealed record ParameterSlot(string Name, long Offset, int[] Shape, ParameterGroup Group)
{
    public long Length => Shape.Aggregate(1L, (a, d) => a * d);
}

/// <summary>How the optimizer treats a parameter (and whether pruning may touch it).</summary>
public enum ParameterGroup { Prunable, Decayed, NotDecayed }

/// <summary>
/// Places every BERT parameter in one flat buffer under its Hugging Face name. Three contiguous
/// segments: the prunable matrices first (the six weight matrices of every encoder layer, with
/// Q, K and V adjacent so they act as one fused [3C, C] projection), then the other decayed
/// matrices, then biases and LayerNorm parameters (no weight decay). The prunable segment has no
/// padding, so the global threshold is one radix select over one span; other tensors start on
/// 16-float boundaries for vector loads.
/// </summary>
public sealed class BertParameterLayout : IFlatParameterLayout
{
    private const int Align = 16;
    private readonly List<ParameterSlot> _slots = new();
    private readonly Dictionary<string, ParameterSlot> _byName = new(StringComparer.Ordinal);

    public BertParameterLayout(BertConfig config, BertHeads heads)
    {
        config.Validate();
        Config = config;
        Heads = heads;
        int c = config.HiddenSize, inter = config.IntermediateSize, v = config.VocabSize;
        long offset = 0;

        void Add(string name, ParameterGroup group, params int[] shape)
        {
            if (group != ParameterGroup.Prunable) offset = (offset + Align - 1) / Align * Align;
            var slot = new ParameterSlot(name, offset, shape, group);
            _slots.Add(slot);
            _byName.Add(name, slot);
            offset += slot.Length;
        }

        // Segment 1: prunable (decayed) matrices, contiguous.
        for (int i = 0; i < config.NumHiddenLayers; i++)
        {
            string p = LayerPrefix(i);
            Add(p + "attention.self.query.weight", ParameterGroup.Prunable, c, c);
            Add(p + "attention.self.key.weight", ParameterGroup.Prunable, c, c);
            Add(p + "attention.self.value.weight", ParameterGroup.Prunable, c, c);
            Add(p + "attention.output.dense.weight", ParameterGroup.Prunable, c, c);
            Add(p + "intermediate.dense.weight", ParameterGroup.Prunable, inter, c);
            Add(p + "output.dense.weight", ParameterGroup.Prunable, c, inter);
        }
        PrunableLength = offset;

        // Segment 2: other decayed matrices.
        offset = (offset + Align - 1) / Align * Align;
        DecayedStart = offset;
        Add("bert.embeddings.word_embeddings.weight", ParameterGroup.Decayed, v, c);
        Add("bert.embeddings.position_embeddings.weight", ParameterGroup.Decayed, config.MaxPositionEmbeddings, c);
        Add("bert.embeddings.token_type_embeddings.weight", ParameterGroup.Decayed, config.TypeVocabSize, c);
        if (heads.Pooler) Add("bert.pooler.dense.weight", ParameterGroup.Decayed, c, c);
        if (heads.MaskedLm) Add("cls.predictions.transform.dense.weight", ParameterGroup.Decayed, c, c);
        if (heads.NextSentence) Add("cls.seq_relationship.weight", ParameterGroup.Decayed, 2, c);
        if (heads.ClassifierLabels > 0) Add("classifier.weight", ParameterGroup.Decayed, heads.ClassifierLabels, c);
        DecayedLength = offset - DecayedStart;

        // Segment 3: biases and LayerNorm (no weight decay). Q, K, V biases adjacent, as their weights.
        offset = (offset + Align - 1) / Align * Align;
        NotDecayedStart = offset;
        Add("bert.embeddings.LayerNorm.weight", ParameterGroup.NotDecayed, c);
        Add("bert.embeddings.LayerNorm.bias", ParameterGroup.NotDecayed, c);
        for (int i = 0; i < config.NumHiddenLayers; i++)
        {
            string p = LayerPrefix(i);
            offset = (offset + Align - 1) / Align * Align;
            // Added back to back (no alignment between them) so they form one [3C] bias.
            foreach (string qkv in new[] { "query", "key", "value" })
            {
                var slot = new ParameterSlot(p + $"attention.self.{qkv}.bias", offset, new[] { c }, ParameterGroup.NotDecayed);
                _slots.Add(slot); _byName.Add(slot.Name, slot); offset += c;
            }
            Add(p + "attention.output.dense.bias", ParameterGroup.NotDecayed, c);
            Add(p + "attention.output.LayerNorm.weight", ParameterGroup.NotDecayed, c);
            Add(p + "attention.output.LayerNorm.bias", ParameterGroup.NotDecayed, c);
            Add(p + "intermediate.dense.bias", ParameterGroup.NotDecayed, inter);
            Add(p + "output.dense.bias", ParameterGroup.NotDecayed, c);
            Add(p + "output.LayerNorm.weight", ParameterGroup.NotDecayed, c);
            Add(p + "output.LayerNorm.bias", ParameterGroup.NotDecayed, c);
        }
        if (heads.Pooler) Add("bert.pooler.dense.bias", ParameterGroup.NotDecayed, c);
        if (heads.MaskedLm)
        {
            Add("cls.predictions.transform.dense.bias", ParameterGroup.NotDecayed, c);
            Add("cls.predictions.transform.LayerNorm.weight", ParameterGroup.NotDecayed, c);
            Add("cls.predictions.transform.LayerNorm.bias", ParameterGroup.NotDecayed, c);
            Add("cls.predictions.bias", ParameterGroup.NotDecayed, v);
        }
        if (heads.NextSentence) Add("cls.seq_relationship.bias", ParameterGroup.NotDecayed, 2);
        if (heads.ClassifierLabels > 0) Add("classifier.bias", ParameterGroup.NotDecayed, heads.ClassifierLabels);
        NotDecayedLength = offset - NotDecayedStart;
        TotalLength = (offset + Align - 1) / Align * Align;
    }

    public static string LayerPrefix(int layer) => $"bert.encoder.layer.{layer}.";

    public BertConfig Config { get; }
    public BertHeads Heads { get; }
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

    public ParameterSlot this[string name] =>
        _byName.TryGetValue(name, out var s) ? s : throw new KeyNotFoundException($"this BERT has no parameter named '{name}'");

    public bool Contains(string name) => _byName.ContainsKey(name);

    /// <summary>The prunable matrices in span order: (name, offset, rows, cols).</summary>
    public IEnumerable<(string Name, long Offset, int Rows, int Cols)> PrunableMatrices =>
        _slots.Where(s => s.Group == ParameterGroup.Prunable).Select(s => (s.Name, s.Offset, s.Shape[0], s.Shape[1]));
}
