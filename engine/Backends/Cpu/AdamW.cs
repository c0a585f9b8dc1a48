using NativeSparsity.Engine.Tensors;

namespace NativeSparsity.Engine.Backends.Cpu;

public sealed unsafe partial class CpuBackend
{
    public void AdamW(Tensor param, Tensor grad, Tensor m, Tensor v, Tensor? mask, Tensor? gradNormSquared, in AdamWParameters p) =>
        throw new NotImplementedException("CpuBackend.AdamW is not written yet");

    public void ApplyMask(Tensor x, Tensor mask) =>
        throw new NotImplementedException("CpuBackend.ApplyMask is not written yet");
}
