using System.Numerics.Tensors;
using NativeSparsity.Engine.Tensors;
using Tensor = NativeSparsity.Engine.Tensors.Tensor;

namespace NativeSparsity.Engine.Backends.Cpu;

public sealed unsafe partial class CpuBackend
{
    public void TanhForward(Tensor x, Tensor y)
    {
        CheckSameLength(x, y, "tanh output");
        float* px = x.F32(), py = y.F32();
        CpuParallel.ForRange(x.Length, 1 << 14, (s, e) =>
            TensorPrimitives.Tanh(new ReadOnlySpan<float>(px + s, (int)(e - s)), new Span<float>(py + s, (int)(e - s))));
    }

    public void TanhBackward(Tensor y, Tensor dy, Tensor dx)
    {
        CheckSameLength(y, dy, "tanh dy");
        CheckSameLength(y, dx, "tanh dx");
        float* py = y.F32(), pdy = dy.F32(), pdx = dx.F32();
        CpuParallel.ForRange(y.Length, 1 << 14, (s, e) =>
        {
            for (long i = s; i < e; i++) pdx[i] = pdy[i] * (1f - py[i] * py[i]);
        });
    }
}
