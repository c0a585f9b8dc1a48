using NativeSparsity.Engine.Tensors;

namespace NativeSparsity.Engine.Backends.Cpu;

public sealed unsafe partial class CpuBackend
{
    public void GeluForward(Tensor x, Tensor y) =>
        throw new NotImplementedException("CpuBackend.GeluForward is not written yet");

    public void GeluBackward(Tensor x, Tensor dy, Tensor dx) =>
        throw new NotImplementedException("CpuBackend.GeluBackward is not written yet");
}
