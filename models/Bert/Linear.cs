using NativeSparsity.Engine.Backends;
using NativeSparsity.Engine.Backends.Cpu;
using NativeSparsity.Engine.Tensors;

namespace NativeSparsity.Models.Bert;

/// <summary>A dense layer in PyTorch's layout: weight [out, in], y = x W^T + b.</summary>
public readonly record struct Linear(Tensor Weight, Tensor? Bias, Tensor WeightGrad, Tensor? BiasGrad, int In, int Out)
{
    /// <summary>
    /// A CSR copy of a pruned <see cref="Weight"/> that the forward pass uses on the CPU backend
    /// (<see cref="CpuBackend.SparseGemm"/>); it is a snapshot, so the weight must not change while it is set.
    /// </summary>
    public SparseRowMatrix? Sparse { get; init; }

    /// <summary>This layer with a CSR copy of its weight when the weight is at least <paramref name="minSparsity"/> sparse (CPU only).</summary>
    public Linear WithSparseFrom(double minSparsity)
    {
        if (Weight.Backend is not CpuBackend) return this;
        var w = SparseRowMatrix.FromDense(Weight);
        return 1 - w.Density >= minSparsity ? this with { Sparse = w } : this;
    }

    /// <summary>y[rows, Out] = x[rows, In] W^T + b.</summary>
    public void Forward(IBackend be, Tensor x, Tensor y, int rows)
    {
        if (Sparse != null && be is CpuBackend cpu) cpu.SparseGemm(rows, x, In, Sparse, 0f, y, Out);
        else be.Gemm(false, true, rows, Out, In, 1f, x, In, Weight, In, 0f, y, Out);
        if (Bias != null) be.AddBias(y, Bias, rows, Out);
    }

    /// <summary>
    /// dW += dy^T x, db += column sums of dy, and dx = dy W (added to dx when accumulateDx, so a
    /// residual branch can sum into the same buffer); dx null skips the input gradient.
    /// </summary>
    public void Backward(IBackend be, Tensor dy, Tensor x, Tensor? dx, int rows, bool accumulateDx = false)
    {
        if (Sparse != null) throw new InvalidOperationException("a layer with a sparse inference copy of its weight cannot train (the copy would go stale)");
        if (dx != null) be.Gemm(false, false, rows, In, Out, 1f, dy, Out, Weight, In, accumulateDx ? 1f : 0f, dx, In);
        be.Gemm(true, false, Out, In, rows, 1f, dy, Out, x, In, 1f, WeightGrad, In);
        if (Bias != null) be.BiasGradient(dy, BiasGrad!, rows, Out);
    }
}

/// <summary>LayerNorm parameters and their gradients.</summary>
public readonly record struct LayerNormParams(Tensor Gamma, Tensor Beta, Tensor GammaGrad, Tensor BetaGrad);
