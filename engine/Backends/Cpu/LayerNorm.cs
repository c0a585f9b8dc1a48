using NativeSparsity.Engine.Tensors;

namespace NativeSparsity.Engine.Backends.Cpu;

public sealed unsafe partial class CpuBackend
{
    public void LayerNormForward(Tensor x, Tensor gamma, Tensor beta, Tensor y, Tensor mean, Tensor rstd, int rows, int cols, float eps) =>
        throw new NotImplementedException("CpuBackend.LayerNormForward is not written yet");

    public void AddLayerNormForward(Tensor a, Tensor b, Tensor sum, Tensor gamma, Tensor beta, Tensor y, Tensor mean, Tensor rstd, int rows, int cols, float eps) =>
        throw new NotImplementedException("CpuBackend.AddLayerNormForward is not written yet");

    public void LayerNormBackward(Tensor dy, Tensor x, Tensor gamma, Tensor mean, Tensor rstd, Tensor dx, Tensor dgamma, Tensor dbeta, int rows, int cols) =>
        throw new NotImplementedException("CpuBackend.LayerNormBackward is not written yet");
}
