using NativeSparsity.Engine.Tensors;

namespace NativeSparsity.Engine.Backends.Cpu;

public sealed unsafe partial class CpuBackend
{
    public void EmbeddingForward(Tensor ids, Tensor table, Tensor output, int count, int dim, bool accumulate) =>
        throw new NotImplementedException("CpuBackend.EmbeddingForward is not written yet");

    public void EmbeddingBackward(Tensor ids, Tensor doutput, Tensor dtable, int count, int dim) =>
        throw new NotImplementedException("CpuBackend.EmbeddingBackward is not written yet");
}
