using NativeSparsity.Engine.Tensors;

namespace NativeSparsity.Engine.Backends.Cpu;

public sealed unsafe partial class CpuBackend
{
    public void Sum(Tensor x, Tensor result) =>
        throw new NotImplementedException("CpuBackend.Sum is not written yet");

    public void SumOfSquares(Tensor x, Tensor result) =>
        throw new NotImplementedException("CpuBackend.SumOfSquares is not written yet");
}
