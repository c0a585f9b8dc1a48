using NativeSparsity.Engine.Backends;
using NativeSparsity.Engine.Backends.Cpu;
using NativeSparsity.Models.Transformer;

namespace NativeSparsity.Models.Bert;

/// <summary>
/// CSR copies of a BERT's encoder projections (fused QKV, attention output, intermediate, output)
/// that run through the sparse kernels of a backend with <see cref="ISparseLinearOps"/>.
/// For inference (<see cref="ForInference"/>) a snapshot of W's nonzeros runs the forward pass.
/// For fine-tuning with a fixed keep mask (<see cref="ForTraining"/>) the pattern is the mask's,
/// W^T runs dX = dY W, and dW is formed only at the kept positions where that pays; the dense
/// parameters stay the truth (the optimizer updates them) and <see cref="Refresh"/> regathers the
/// kept values after each update. Projections below the given sparsity stay dense.
/// </summary>
public sealed unsafe class SparseEncoderWeights
{
    /// <summary>Sparsity from which the sparse forward and dX products beat dense (docs/PERFORMANCE.md: break-even 52%).</summary>
    public const double ForwardFrom = 0.55;

    /// <summary>Sparsity from which the sampled dW beats the dense dW (break-even 72%).</summary>
    public const double WeightGradFrom = 0.75;

    private readonly Dictionary<(int Layer, int Projection), Linear> _sparse = new();

    private SparseEncoderWeights() { }

    /// <summary>Projections that run sparse.</summary>
    public int Count => _sparse.Count;

    /// <summary>Of those, the projections whose dW is formed only at the kept positions.</summary>
    public int WeightGradCount => _sparse.Values.Count(l => l.SparseWeightGrad);

    /// <summary>
    /// Training copies for <paramref name="parameters"/> under the prunable span's keep mask
    /// <paramref name="keep"/>; null when the backend has no sparse kernels.
    /// </summary>
    public static SparseEncoderWeights? ForTraining(BertParameters parameters, ReadOnlySpan<byte> keep,
        double forwardFrom = ForwardFrom, double weightGradFrom = WeightGradFrom)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        if (keep.Length != parameters.Layout.PrunableLength)
            throw new ArgumentException($"the keep mask covers {keep.Length} weights, the model's prunable span {parameters.Layout.PrunableLength}");
        return Build(parameters, keep, forwardFrom, weightGradFrom);
    }

    /// <summary>
    /// Inference snapshots of the projections at least <paramref name="minSparsity"/> sparse (their
    /// nonzero weights; the weights must not change while in use); null without sparse kernels.
    /// </summary>
    public static SparseEncoderWeights? ForInference(BertParameters parameters, double minSparsity = ForwardFrom)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        return Build(parameters, default, minSparsity, double.PositiveInfinity);
    }

    /// <summary>An empty <paramref name="keep"/> takes the pattern from the nonzero weights and builds no transposes.</summary>
    private static SparseEncoderWeights? Build(BertParameters parameters, ReadOnlySpan<byte> keep, double forwardFrom, double weightGradFrom)
    {
        if (parameters.Backend is not ISparseLinearOps) return null;
        bool training = !keep.IsEmpty;
        var set = new SparseEncoderWeights();
        for (int layer = 0; layer < parameters.Config.NumHiddenLayers; layer++)
        {
            var w = BertModel.LayerWeights(parameters, layer);
            var projections = new[] { w.Qkv, w.AttentionOutput, w.Intermediate, w.Output };
            for (int j = 0; j < projections.Length; j++)
            {
                var l = projections[j];
                var dense = new ReadOnlySpan<float>(l.Weight.F32(), (int)l.Weight.Length);
                var mask = training ? keep.Slice(checked((int)(l.Weight.Offset - parameters.Values.Offset)), dense.Length) : default;
                var csr = SparseRowMatrix.FromDense(dense, l.Out, l.In, mask);
                double sparsity = 1 - csr.Density;
                if (sparsity < forwardFrom) continue;
                set._sparse[(layer, j)] = training
                    ? l with { Sparse = csr, SparseTransposed = csr.Transpose(), SparseWeightGrad = sparsity >= weightGradFrom }
                    : l with { Sparse = csr };
            }
        }
        return set;
    }

    /// <summary>Layer <paramref name="layer"/>'s weights with its sparse projections swapped in.</summary>
    internal TransformerLayerWeights Apply(int layer, TransformerLayerWeights w) => w with
    {
        Qkv = Pick(layer, 0, w.Qkv), AttentionOutput = Pick(layer, 1, w.AttentionOutput),
        Intermediate = Pick(layer, 2, w.Intermediate), Output = Pick(layer, 3, w.Output),
    };

    private Linear Pick(int layer, int projection, Linear dense) => _sparse.TryGetValue((layer, projection), out var s) ? s : dense;

    /// <summary>Regathers every CSR copy's values from the dense weights (call after each optimizer update).</summary>
    public void Refresh()
    {
        foreach (var l in _sparse.Values)
        {
            var dense = new ReadOnlySpan<float>(l.Weight.F32(), (int)l.Weight.Length);
            l.Sparse!.RefreshValues(dense);
            l.SparseTransposed?.RefreshValues(dense);
        }
    }
}
