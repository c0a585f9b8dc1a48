using NativeSparsity.Engine.Backends.Cpu;
using NativeSparsity.Engine.Tensors;

namespace NativeSparsity.Engine.Backends;

/// <summary>
/// A backend that can run a pruned linear layer through sparse kernels over a CSR copy of its
/// weight (<see cref="SparseRowMatrix"/>); models ask for this capability instead of a backend type.
/// The CPU backend has it; a backend without it runs pruned layers densely.
/// </summary>
public interface ISparseLinearOps
{
    /// <summary>Y[m, w.Rows] = X[m, w.Cols] W^T + beta Y: the forward product, and dX = dY W over W's transpose.</summary>
    void SparseGemm(int m, Tensor x, int ldx, SparseRowMatrix w, float beta, Tensor y, int ldy);

    /// <summary>dW[o, i] = beta dW[o, i] + sum_t dY[t, o] X[t, i] at the kept (o, i) of <paramref name="pattern"/> only.</summary>
    void SparseGemmSampled(int m, Tensor dy, int lddy, Tensor x, int ldx, SparseRowMatrix pattern, float beta, Tensor dw, int ldw);
}
