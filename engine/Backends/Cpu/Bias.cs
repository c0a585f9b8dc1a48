using NativeSparsity.Engine.Tensors;

namespace NativeSparsity.Engine.Backends.Cpu;

public sealed unsafe partial class CpuBackend
{
    public void AddBias(Tensor y, Tensor bias, int rows, int cols) =>
        throw new NotImplementedException("CpuBackend.AddBias is not written yet");

    public void BiasGradient(Tensor dy, Tensor dbias, int rows, int cols) =>
        throw new NotImplementedException("CpuBackend.BiasGradient is not written yet");
}
