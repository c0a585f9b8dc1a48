using NativeSparsity.Engine.Tensors;

namespace NativeSparsity.Engine.Backends.Cpu;

public sealed unsafe partial class CpuBackend
{
    public void Gemm(bool transA, bool transB, int m, int n, int k, float alpha, Tensor a, int lda, Tensor b, int ldb, float beta, Tensor c, int ldc) =>
        throw new NotImplementedException("CpuBackend.Gemm is not written yet");

    public void GemmStridedBatched(bool transA, bool transB, int m, int n, int k, float alpha, Tensor a, int lda, long strideA, Tensor b, int ldb, long strideB, float beta, Tensor c, int ldc, long strideC, int batch) =>
        throw new NotImplementedException("CpuBackend.GemmStridedBatched is not written yet");
}
