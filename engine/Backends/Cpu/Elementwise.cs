using NativeSparsity.Engine.Tensors;

namespace NativeSparsity.Engine.Backends.Cpu;

public sealed unsafe partial class CpuBackend
{
    public void Add(Tensor a, Tensor b, Tensor y) =>
        throw new NotImplementedException("CpuBackend.Add is not written yet");

    public void Axpy(float alpha, Tensor x, Tensor y) =>
        throw new NotImplementedException("CpuBackend.Axpy is not written yet");

    public void Scale(Tensor x, float alpha) =>
        throw new NotImplementedException("CpuBackend.Scale is not written yet");
}
