using NativeSparsity.Engine.Backends;
using NativeSparsity.Engine.Optim;
using NativeSparsity.Engine.Sparsity;
using NativeSparsity.Engine.Tensors;
using NativeSparsity.Models.Bert;

namespace NativeSparsity.Models.Transformer;

/// <summary>
/// A model's parameters as one flat buffer in three segments: the prunable matrices first (one
/// contiguous span), then the other decayed tensors, then biases and LayerNorm parameters.
/// </summary>
public interface IFlatParameterLayout
{
    long TotalLength { get; }
    long PrunableLength { get; }
    long DecayedStart { get; }
    long DecayedLength { get; }
    long NotDecayedStart { get; }
    long NotDecayedLength { get; }
    ParameterSlot this[string name] { get; }
    IEnumerable<(string Name, long Offset, int Rows, int Cols)> PrunableMatrices { get; }
}

/// <summary>
/// The flat parameter and gradient buffers of one model laid out by an <see cref="IFlatParameterLayout"/>;
/// every named tensor is a view into them. BERT and ViT differ only in names, shapes and initialisation.
/// </summary>
public abstract class FlatParameters : IDisposable
{
    private readonly IFlatParameterLayout _layout;

    protected FlatParameters(IBackend backend, IFlatParameterLayout layout)
    {
        Backend = backend;
        _layout = layout;
        Values = backend.Allocate(DType.F32, checked((int)layout.TotalLength));
        Grads = backend.Allocate(DType.F32, checked((int)layout.TotalLength));
    }

    public IBackend Backend { get; }
    public Tensor Values { get; }
    public Tensor Grads { get; }

    /// <summary>A parameter's values in its stored shape.</summary>
    public Tensor this[string name] => View(Values, name);
    public Tensor Grad(string name) => View(Grads, name);

    /// <summary>The prunable span of the value buffer (all prunable matrices, contiguous).</summary>
    public Tensor PrunableValues => Values.Slice(0, checked((int)_layout.PrunableLength));
    public Tensor PrunableGrads => Grads.Slice(0, checked((int)_layout.PrunableLength));

    /// <summary>The prunable matrices (six per encoder layer) over the value buffer, for the sparsity core.</summary>
    public PrunableSet PrunableSet() => new(PrunableValues,
        _layout.PrunableMatrices.Select(m => new PrunableMatrix(m.Name, m.Offset, m.Rows, m.Cols)));

    private Tensor View(Tensor buffer, string name)
    {
        var slot = _layout[name];
        return buffer.Slice(slot.Offset, slot.Shape);
    }

    /// <summary>
    /// The three AdamW segments over the flat buffers, with moments <paramref name="m"/> and
    /// <paramref name="v"/> laid out like the parameters: the prunable matrices (decayed; masked by
    /// <paramref name="prunableMask"/> when given), the other decayed tensors, and the biases and
    /// LayerNorm parameters (not decayed).
    /// </summary>
    public AdamWSegment[] OptimizerSegments(Tensor m, Tensor v, Tensor? prunableMask = null)
    {
        var layout = _layout;
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

    public LayerNormParams LayerNorm(string prefix) =>
        new(this[prefix + ".weight"], this[prefix + ".bias"], Grad(prefix + ".weight"), Grad(prefix + ".bias"));

    public void ZeroGrads() => Backend.Fill(Grads, 0f);

    public void Dispose()
    {
        Values.Storage.Dispose();
        Grads.Storage.Dispose();
        GC.SuppressFinalize(this);
    }
}
