using System.Numerics.Tensors;
using NativeSparsity.Engine.Tensors;
using Tensor = NativeSparsity.Engine.Tensors.Tensor;

namespace NativeSparsity.Engine.Backends.Cpu;

public sealed unsafe partial class CpuBackend
{
    public void TanhForward(Tensor x, Tensor y)
    {
        CheckSameLength(x, y, nameof(TanhForward));
        float* px = x.F32(), py = y.F32();
        CpuParallel.ForRange(x.Length, 1 << 14, (s, e) =>
            TensorPrimitives.Tanh(new ReadOnlySpan<float>(px + s, (int)(e - s)), new Span<float>(py + s, (int)(e - s))));
    }

    public void TanhBackward(Tensor y, Tensor dy, Tensor dx)
    {
        CheckSameLength(y, dy, nameof(TanhBackward));
        CheckSameLength(y, dx, nameof(TanhBackward));
        float* py = y.F32(), pdy = dy.F32(), pdx = dx.F32();
        CpuParallel.ForRange(y.Length, 1 << 14, (s, e) =>
        {
            for (long i = s; i < e; i++) pdx[i] = pdy[i] * (1f - py[i] * py[i]);
        });
    }

    private static void CheckSameLength(Tensor a, Tensor b, string op)
    {
        if (a.Length != b.Length)
            throw new ArgumentException($"{op}: {a} and {b} must have the same length");
    }
}
