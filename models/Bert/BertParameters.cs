using NativeSparsity.Engine.Backends;
using NativeSparsity.Engine.Optim;
using NativeSparsity.Engine.Random;
using NativeSparsity.Engine.Sparsity;
using NativeSparsity.Engine.Tensors;

namespace NativeSparsity.Models.Bert;

/// <summary>
/// The flat parameter and gradient buffers of one BERT, laid out by <see cref="BertParameterLayout"/>;
/// every named tensor is a view into them.
/// </summary>
public sealed class BertParameters : IDisposable
{
    public BertParameters(IBackend backend, BertParameterLayout layout)
    {
        Backend = backend;
        Layout = layout;
        Values = backend.Allocate(DType.F32, checked((int)layout.TotalLength));
        Grads = backend.Allocate(DType.F32, checked((int)layout.TotalLength));
    }

    public IBackend Backend { get; }
    public BertParameterLayout Layout { get; }
    public BertConfig Config => Layout.Config;
    public Tensor Values { get; }
    public Tensor Grads { get; }

    public Tensor this[string name] => View(Values, name);
    public Tensor Grad(string name) => View(Grads, name);

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
    /// The three AdamW segments over the flat buffers, with moments <paramref name="m"/> and
    /// <paramref name="v"/> laid out like the parameters: the prunable matrices (decayed; masked by
    /// <paramref name="prunableMask"/> when given), the other matrices (decayed), and the biases and
    /// LayerNorm parameters (not decayed, as BERT trains).
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

    public Linear Linear(string prefix, bool bias = true)
    {
        var w = this[prefix + ".weight"];
        return new Linear(w, bias ? this[prefix + ".bias"] : null, Grad(prefix + ".weight"),
                          bias ? Grad(prefix + ".bias") : null, w.Dim(1), w.Dim(0));
    }

    public LayerNormParams LayerNorm(string prefix) =>
        new(this[prefix + ".weight"], this[prefix + ".bias"], Grad(prefix + ".weight"), Grad(prefix + ".bias"));

    /// <summary>
    /// BERT's initialisation: matrices and embeddings N(0, initializer_range), biases 0, LayerNorm
    /// gamma 1. Draws come from Philox (seed, stream = parameter index), so any backend gives the
    /// same model for a seed.
    /// </summary>
    public void Initialize(ulong seed)
    {
        var host = new float[Layout.TotalLength];
        float std = Config.InitializerRange;
        for (int i = 0; i < Layout.Slots.Count; i++)
        {
            var slot = Layout.Slots[i];
            var span = host.AsSpan(checked((int)slot.Offset), checked((int)slot.Length));
            if (slot.Name.EndsWith("LayerNorm.weight", StringComparison.Ordinal)) span.Fill(1f);
            else if (slot.Shape.Length == 2) Philox.FillNormal(span, seed, (ulong)i, 0, 0f, std);
            // biases stay 0
        }
        Backend.CopyFromHost<float>(host, Values);
    }

    public void ZeroGrads() => Backend.Fill(Grads, 0f);

    public void Dispose()
    {
        Values.Storage.Dispose();
        Grads.Storage.Dispose();
    }
}
