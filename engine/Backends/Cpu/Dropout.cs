using NativeSparsity.Engine.Tensors;

namespace NativeSparsity.Engine.Backends.Cpu;

public sealed unsafe partial class CpuBackend
{
    public void DropoutForward(Tensor x, Tensor y, float p, ulong seed, ulong stream, ulong counter) =>
        throw new NotImplementedException("CpuBackend.DropoutForward is not written yet");

    public void DropoutBackward(Tensor dy, Tensor dx, float p, ulong seed, ulong stream, ulong counter) =>
        throw new NotImplementedException("CpuBackend.DropoutBackward is not written yet");
}
