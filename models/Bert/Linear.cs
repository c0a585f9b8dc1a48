using NativeSparsity.Engine.Backends;
using NativeSparsity.Engine.Backends.Cpu;
using NativeSparsity.Engine.Tensors;

namespace NativeSparsity.Models.Bert;

/// <summary>A dense layer in PyTorch's layout: weight [out, in], y = x W^T + b.</summary>
public readonly record struct Linear(Tensor Weight, Tensor? Bias, Tensor WeightGrad, Tensor? BiasGrad, int In, int Out)
{
    /// <summary>
    /// A CSR copy of a pruned <see cref="Weight"/> that the forward pass uses on a backend with sparse
    /// kernels (<see cref="ISparseLinearOps"/>); a snapshot, refreshed by its owner (<see cref="SparseEncoderWeights"/>).
    /// </summary>
    public SparseRowMatrix? Sparse { get; init; }

    /// <summary>
    /// Set for fixed-mask training: W^T in CSR, so dX = dY W
    /// runs as a sparse forward product; its values are refreshed with <see cref="Sparse"/>'s after each update.
    /// </summary>
    public SparseRowMatrix? SparseTransposed { get; init; }

    /// <summary>With <see cref="SparseTransposed"/>: dW only at the kept positions (the sampled product) instead of dense.</summary>
    public bool SparseWeightGrad { get; init; }

    /// <summary>y[rows, Out] = x[rows, In] W^T + b.</summary>
    public void Forward(IBackend be, Tensor x, Tensor y, int rows)
    {
        if (Sparse != null && be is ISparseLinearOps sparse) sparse.SparseGemm(rows, x, In, Sparse, 0f, y, Out);
        else be.Gemm(false, true, rows, Out, In, 1f, x, In, Weight, In, 0f, y, Out);
        if (Bias != null) be.AddBias(y, Bias, rows, Out);
    }

    /// <summary>
    /// dW += dy^T x, db += column sums of dy, and dx = dy W (added to dx when accumulateDx, so a
    /// residual branch can sum into the same buffer); dx null skips the input gradient.
    /// </summary>
    public void Backward(IBackend be, Tensor dy, Tensor x, Tensor? dx, int rows, bool accumulateDx = false)
    {
        var ops = be as ISparseLinearOps;
        if (Sparse != null && (SparseTransposed == null || ops == null))
            throw new InvalidOperationException("a layer with a sparse inference copy of its weight cannot train (the copy would go stale)");
        float dxBeta = accumulateDx ? 1f : 0f;
        if (dx != null)
        {
            if (SparseTransposed != null) ops!.SparseGemm(rows, dy, Out, SparseTransposed, dxBeta, dx, In);
            else be.Gemm(false, false, rows, In, Out, 1f, dy, Out, Weight, In, dxBeta, dx, In);
        }
        // Pruned positions of dW stay as they were (zeroed per step); the masked update ignores them either way.
        if (SparseWeightGrad && Sparse != null) ops!.SparseGemmSampled(rows, dy, Out, x, In, Sparse, 1f, WeightGrad, In);
        else be.Gemm(true, false, Out, In, rows, 1f, dy, Out, x, In, 1f, WeightGrad, In);
        if (Bias != null) be.BiasGradient(dy, BiasGrad!, rows, Out);
    }
}

/// <summary>LayerNorm parameters and their gradients.</summary>
public readonly record struct LayerNormParams(Tensor Gamma, Tensor Beta, Tensor GammaGrad, Tensor BetaGrad);
