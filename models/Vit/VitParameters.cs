using NativeSparsity.Engine.Backends;
using NativeSparsity.Engine.Optim;
using NativeSparsity.Engine.Random;
using NativeSparsity.Engine.Sparsity;
using NativeSparsity.Engine.Tensors;
using NativeSparsity.Models.Bert;
using NativeSparsity.Models.Transformer;

namespace NativeSparsity.Models.Vit;

/// <summary>
/// The flat parameter and gradient buffers of one ViT, laid out by <see cref="VitParameterLayout"/>;
/// every named tensor is a view into them.
/// </summary>
public sealed class VitParameters : IDisposable
{
    public VitParameters(IBackend backend, VitParameterLayout layout)
    {
        Backend = backend;
        Layout = layout;
        Values = backend.Allocate(DType.F32, checked((int)layout.TotalLength));
        Grads = backend.Allocate(DType.F32, checked((int)layout.TotalLength));
    }

    public IBackend Backend { get; }
    public VitParameterLayout Layout { get; }
    public VitConfig Config => Layout.Config;
    public Tensor Values { get; }
    public Tensor Grads { get; }

    /// <summary>A parameter's values in its HF shape (e.g. the projection as [hidden, C, p, p]).</summary>
    public Tensor this[string name] => View(Values, name);
    public Tensor Grad(string name) => View(Grads, name);

    /// <summary>A parameter viewed as a [rows, cols] matrix (rows = first dimension), as the model uses it.</summary>
    internal Tensor Matrix(Tensor buffer, string name)
    {
        var slot = Layout[name];
        int rows = slot.Shape.Length == 3 ? slot.Shape[0] * slot.Shape[1] : slot.Shape[0];
        return buffer.Slice(slot.Offset, rows, checked((int)(slot.Length / rows)));
    }

    /// <summary>The prunable span of the value buffer (all prunable matrices, contiguous).</summary>
    public Tensor PrunableValues => Values.Slice(0, checked((int)Layout.PrunableLength));
    public Tensor PrunableGrads => Grads.Slice(0, checked((int)Layout.PrunableLength));

    /// <summary>The prunable matrices (six per encoder layer) over the value buffer, for the sparsity core.</summary>
    public PrunableSet PrunableSet() => new(PrunableValues,
        Layout.PrunableMatrices.Select(m => new PrunableMatrix(m.Name, m.Offset, m.Rows, m.Cols)));

    private Tensor View(Tensor buffer, string name)
    {
        var slot = Layout[name];
        return buffer.Slice(slot.Offset, slot.Shape);
    }

    /// <summary>
    /// The three AdamW segments over the flat buffers (moments <paramref name="m"/>, <paramref name="v"/>
    /// laid out like the parameters): prunable matrices (decayed; masked by <paramref name="prunableMask"/>
    /// when given), other decayed tensors, and biases + LayerNorm parameters (not decayed).
    /// </summary>
    public AdamWSegment[] OptimizerSegments(Tensor m, Tensor v, Tensor? prunableMask = null)
    {
        var layout = Layout;
        AdamWSegment Segment(long start, long length, bool decay, Tensor? mask) => new(
            Values.Slice(start, checked((int)length)), Grads.Slice(start, checked((int)length)),
            m.Slice(start, checked((int)length)), v.Slice(start, checked((int)length)), mask, decay);
        return new[]
        {
            Segment(0, layout.PrunableLength, true, prunableMask),
            Segment(layout.DecayedStart, layout.DecayedLength, true, null),
            Segment(layout.NotDecayedStart, layout.NotDecayedLength, false, null),
        };
    }

    /// <summary>A dense layer by prefix, its weight viewed as [out, in] (the patch projection's [c, C, p, p] as [c, C*p*p]).</summary>
    public Linear Linear(string prefix)
    {
        var w = Matrix(Values, prefix + ".weight");
        return new Linear(w, this[prefix + ".bias"], Matrix(Grads, prefix + ".weight"), Grad(prefix + ".bias"), w.Dim(1), w.Dim(0));
    }

    public LayerNormParams LayerNorm(string prefix) =>
        new(this[prefix + ".weight"], this[prefix + ".bias"], Grad(prefix + ".weight"), Grad(prefix + ".bias"));

    /// <summary>Layer <paramref name="layer"/>'s weights (pre-LN: layernorm_before, then layernorm_after).</summary>
    internal TransformerLayerWeights LayerWeights(int layer)
    {
        string pre = VitParameterLayout.LayerPrefix(layer);
        var qkv = TransformerLayerWeights.FusedQkv(Values, Grads, Layout[pre + "attention.attention.query.weight"].Offset,
                                                   Layout[pre + "attention.attention.query.bias"].Offset, Config.HiddenSize);
        return new TransformerLayerWeights(qkv, Linear(pre + "attention.output.dense"), Linear(pre + "intermediate.dense"),
                                           Linear(pre + "output.dense"), LayerNorm(pre + "layernorm_before"), LayerNorm(pre + "layernorm_after"));
    }

    /// <summary>
    /// ViT initialisation as BERT's: every weight, [CLS], position embeddings and the mask token
    /// N(0, initializer_range); biases 0; LayerNorm gamma 1. (HF ViT draws from a normal truncated
    /// at 2 std and zeroes the mask token; SimMIM draws the mask token like the rest, as here.)
    /// Philox (seed, stream = parameter index), so any backend gives the same model for a seed.
    /// </summary>
    public void Initialize(ulong seed)
    {
        var host = new float[Layout.TotalLength];
        float std = Config.InitializerRange;
        for (int i = 0; i < Layout.Slots.Count; i++)
        {
            var slot = Layout.Slots[i];
            var span = host.AsSpan(checked((int)slot.Offset), checked((int)slot.Length));
            if (IsLayerNorm(slot.Name)) { if (slot.Name.EndsWith(".weight", StringComparison.Ordinal)) span.Fill(1f); }
            else if (!slot.Name.EndsWith(".bias", StringComparison.Ordinal)) Philox.FillNormal(span, seed, (ulong)i, 0, 0f, std);
        }
        Backend.CopyFromHost<float>(host, Values);
    }

    private static bool IsLayerNorm(string name) => name.Contains("layernorm", StringComparison.Ordinal);

    public void ZeroGrads() => Backend.Fill(Grads, 0f);

    public void Dispose()
    {
        Values.Storage.Dispose();
        Grads.Storage.Dispose();
    }
}
