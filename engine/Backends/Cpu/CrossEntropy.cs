using NativeSparsity.Engine.Tensors;

namespace NativeSparsity.Engine.Backends.Cpu;

public sealed unsafe partial class CpuBackend
{
    public void CrossEntropyForward(Tensor logits, Tensor targets, Tensor losses, int rows, int classes, int ignoreIndex) =>
        throw new NotImplementedException("CpuBackend.CrossEntropyForward is not written yet");

    public void CrossEntropyBackward(Tensor logits, Tensor targets, Tensor dlogits, int rows, int classes, int ignoreIndex, float scale) =>
        throw new NotImplementedException("CpuBackend.CrossEntropyBackward is not written yet");
}
