using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using NativeSparsity.Engine.Tensors;

namespace NativeSparsity.Engine.Backends.Cpu;

public sealed unsafe partial class CpuBackend
{
    // Fixed by the length alone: partials are combined in chunk order, so the result is bitwise
    // the same for any thread count.
    private const int ReductionChunk = 1 << 15;

    public void Sum(Tensor x, Tensor result) => Reduce(x, result, squares: false);

    public void SumOfSquares(Tensor x, Tensor result) => Reduce(x, result, squares: true);

    private static void Reduce(Tensor x, Tensor result, bool squares)
    {
        RequireF32(x, nameof(x));
        RequireF32(result, nameof(result));
        CpuTensor.ExpectLength(result, 1, nameof(result));
        float* px = x.F32();
        long n = x.Length;
        int chunks = (int)((n + ReductionChunk - 1) / ReductionChunk);
        var partials = new double[chunks];
        CpuParallel.For(chunks, c =>
        {
            long start = (long)c * ReductionChunk;
            int count = (int)Math.Min(ReductionChunk, n - start);
            partials[c] = squares ? SumSquaresDouble(px + start, count) : SumDouble(px + start, count);
        }, ReductionChunk);
        double total = 0;
        for (int c = 0; c < chunks; c++) total += partials[c];
        *result.F32() = (float)total;
    }

    /// <summary>Sum in double: each float widened, four-lane double accumulators, lanes combined in a fixed order.</summary>
    private static double SumDouble(float* p, int n)
    {
        var acc0 = Vector256<double>.Zero;
        var acc1 = Vector256<double>.Zero;
        int i = 0;
        for (; i + Vector256<float>.Count <= n; i += Vector256<float>.Count)
        {
            var (lo, hi) = Vector256.Widen(Vector256.Load(p + i));
            acc0 += lo;
            acc1 += hi;
        }
        double total = HorizontalSum(acc0 + acc1);
        for (; i < n; i++) total += p[i];
        return total;
    }

    private static double SumSquaresDouble(float* p, int n)
    {
        var acc0 = Vector256<double>.Zero;
        var acc1 = Vector256<double>.Zero;
        int i = 0;
        for (; i + Vector256<float>.Count <= n; i += Vector256<float>.Count)
        {
            var (lo, hi) = Vector256.Widen(Vector256.Load(p + i));
            acc0 = Vector256.FusedMultiplyAdd(lo, lo, acc0);
            acc1 = Vector256.FusedMultiplyAdd(hi, hi, acc1);
        }
        double total = HorizontalSum(acc0 + acc1);
        for (; i < n; i++) total += (double)p[i] * p[i];
        return total;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static double HorizontalSum(Vector256<double> v) =>
        (v.GetElement(0) + v.GetElement(1)) + (v.GetElement(2) + v.GetElement(3));
}
