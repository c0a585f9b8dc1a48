using NativeSparsity.Engine.Tensors;

namespace NativeSparsity.Engine.Backends.Cpu;

public sealed unsafe partial class CpuBackend
{
    public void SplitQkvHeads(Tensor qkv, Tensor q, Tensor k, Tensor v, int batch, int seq, int heads, int headDim) =>
        throw new NotImplementedException("CpuBackend.SplitQkvHeads is not written yet");

    public void SplitQkvHeadsBackward(Tensor dq, Tensor dk, Tensor dv, Tensor dqkv, int batch, int seq, int heads, int headDim) =>
        throw new NotImplementedException("CpuBackend.SplitQkvHeadsBackward is not written yet");

    public void MergeHeads(Tensor x, Tensor y, int batch, int seq, int heads, int headDim) =>
        throw new NotImplementedException("CpuBackend.MergeHeads is not written yet");

    public void MergeHeadsBackward(Tensor dy, Tensor dx, int batch, int seq, int heads, int headDim) =>
        throw new NotImplementedException("CpuBackend.MergeHeadsBackward is not written yet");

    public void AttentionSoftmaxForward(Tensor scores, Tensor keyMask, Tensor probs, float scale, int batch, int heads, int seqQ, int seqK) =>
        throw new NotImplementedException("CpuBackend.AttentionSoftmaxForward is not written yet");

    public void AttentionSoftmaxBackward(Tensor probs, Tensor dprobs, Tensor dscores, float scale, int rows, int seqK) =>
        throw new NotImplementedException("CpuBackend.AttentionSoftmaxBackward is not written yet");
}
