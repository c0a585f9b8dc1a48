using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;
using NativeSparsity.Engine.Tensors;

namespace NativeSparsity.Engine.Backends.Cpu;

public sealed unsafe partial class CpuBackend
{
    // Plain streaming ops: big fixed chunks so each task amortises its scheduling cost.
    private const int ElementwiseChunk = 1 << 16;

    public void Add(Tensor a, Tensor b, Tensor y)
    {
        ExpectMatchingF32(a, b, nameof(a), nameof(b));
        ExpectMatchingF32(a, y, nameof(a), nameof(y));
        float* pa = a.F32(), pb = b.F32(), py = y.F32();
        CpuParallel.ForRange(a.Length, ElementwiseChunk, (start, end) =>
        {
            int n = (int)(end - start);
            TensorPrimitives.Add(new ReadOnlySpan<float>(pa + start, n), new ReadOnlySpan<float>(pb + start, n),
                                 new Span<float>(py + start, n));
        });
    }

    public void Axpy(float alpha, Tensor x, Tensor y)
    {
        ExpectMatchingF32(x, y, nameof(x), nameof(y));
        float* px = x.F32(), py = y.F32();
        CpuParallel.ForRange(x.Length, ElementwiseChunk, (start, end) =>
        {
            int n = (int)(end - start);
            var ys = new Span<float>(py + start, n);
            // Fused, as a GPU's fmaf would do it, so both backends round the same way.
            TensorPrimitives.FusedMultiplyAdd(new ReadOnlySpan<float>(px + start, n), alpha, ys, ys);
        });
    }

    public void Scale(Tensor x, float alpha)
    {
        RequireF32(x, nameof(x));
        float* px = x.F32();
        CpuParallel.ForRange(x.Length, ElementwiseChunk, (start, end) =>
        {
            var xs = new Span<float>(px + start, (int)(end - start));
            TensorPrimitives.Multiply(xs, alpha, xs);
        });
    }

    /// <summary>Both tensors F32 and of equal length, else an error naming them.</summary>
    private static void ExpectMatchingF32(Tensor a, Tensor b, string nameA, string nameB)
    {
        RequireF32(a, nameA);
        RequireF32(b, nameB);
        if (a.Length != b.Length)
            throw new ArgumentException($"{nameB}: {b} holds {b.Length} elements but {nameA} ({a}) holds {a.Length}; they must match");
    }

    private static void RequireF32(Tensor t, string name)
    {
        if (t.DType != DType.F32) throw new ArgumentException($"{name}: {t} has dtype {t.DType}, the op needs F32");
    }
}
