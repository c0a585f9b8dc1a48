using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using NativeSparsity.Engine.Tensors;

namespace NativeSparsity.Engine.Backends.Cpu;

public sealed unsafe partial class CpuBackend
{
    /// <summary>
    /// The weight gradient of a pruned linear layer, only where the mask keeps weights:
    /// dW[o, i] = beta dW[o, i] + sum_t dY[t, o] X[t, i] for every kept (o, i) of <paramref name="pattern"/>
    /// (dY [m, pattern.Rows], X [m, pattern.Cols], dW dense [pattern.Rows, ldw]); pruned positions
    /// are not touched. With dX = dY W as <see cref="SparseGemm"/> over <see cref="SparseRowMatrix.Transpose"/>,
    /// this is the backward pass of a fixed-mask fine-tuning step. Bitwise independent of the thread count.
    /// </summary>
    public void SparseGemmSampled(int m, Tensor dy, int lddy, Tensor x, int ldx, SparseRowMatrix pattern, float beta, Tensor dw, int ldw)
    {
        ArgumentNullException.ThrowIfNull(pattern);
        if (m < 0) throw new ArgumentException($"SparseGemmSampled: m must be non-negative, got {m}");
        if (lddy < Math.Max(1, pattern.Rows) || ldx < Math.Max(1, pattern.Cols) || ldw < Math.Max(1, pattern.Cols))
            throw new ArgumentException($"SparseGemmSampled: lddy = {lddy} must be at least {pattern.Rows}, ldx = {ldx} and ldw = {ldw} at least {pattern.Cols}");
        if (m > 0 && (dy.Length < (long)(m - 1) * lddy + pattern.Rows || x.Length < (long)(m - 1) * ldx + pattern.Cols))
            throw new ArgumentException($"SparseGemmSampled: dY {dy} or X {x} is too small for m = {m}, W [{pattern.Rows}, {pattern.Cols}]");
        if (pattern.Rows > 0 && dw.Length < (long)(pattern.Rows - 1) * ldw + pattern.Cols)
            throw new ArgumentException($"SparseGemmSampled: dW {dw} is too small for [{pattern.Rows}, {pattern.Cols}] with ldw = {ldw}");
        if (dy.DType != DType.F32 || x.DType != DType.F32 || dw.DType != DType.F32) throw new ArgumentException("SparseGemmSampled: dY, X and dW must be F32");
        CpuSparseGemm.RunSampled(m, dy.F32(), lddy, x.F32(), ldx, pattern, beta, dw.F32(), ldw, CpuParallel.MaxThreads);
    }
}

internal static unsafe partial class CpuSparseGemm
{
    /// <summary>Output rows per task of the sampled product: fixed, so the partition never depends on the thread count.</summary>
    private const int SampledRowsPerTask = 256;

    /// <summary>Tokens per step of the sampled product: two tiles side by side, so one reduction serves 32 products.</summary>
    private const int Pair = 2 * Tile;

    /// <summary>
    /// Tasks are fixed blocks of output rows; each sweeps the tokens 32 at a time in order,
    /// transposing two tiles of X (all columns) and of dY (its rows) side by side as the forward
    /// kernel packs one, and adds to each kept weight's running sum the 32-token dot product of its
    /// two lines, reduced in a fixed tree. So every sum runs over the tokens in the same order
    /// whatever the thread count or kernel.
    /// </summary>
    public static void RunSampled(int m, float* dy, int lddy, float* x, int ldx, SparseRowMatrix w, float beta, float* dw, int ldw, int threads)
    {
        int rows = w.Rows, cols = w.Cols;
        if (rows == 0) return;
        int tasks = (rows + SampledRowsPerTask - 1) / SampledRowsPerTask;
        fixed (int* rowStart = w.RowStart, columns = w.Columns)
        {
            int* rs = rowStart, cs = columns;
            void Body(int task)
            {
                int o0 = task * SampledRowsPerTask, o1 = Math.Min(rows, o0 + SampledRowsPerTask);
                int p0 = rs[o0], kept = rs[o1] - p0;
                float* xt = GemmBuffer.ForA((long)cols * Pair);
                float* yt = GemmBuffer.ForOutput((long)(o1 - o0) * Pair + kept);
                float* sums = yt + (long)(o1 - o0) * Pair;
                new Span<float>(sums, kept).Clear();
                for (int t0 = 0; t0 < m; t0 += Pair)
                {
                    int first = Math.Min(Tile, m - t0), second = Math.Clamp(m - t0 - Tile, 0, Tile);
                    PackTransposed(x + (long)t0 * ldx, ldx, first, cols, xt, Pair);
                    PackTransposed(x + (long)(t0 + Tile) * ldx, ldx, second, cols, xt + Tile, Pair);
                    PackTransposed(dy + (long)t0 * lddy + o0, lddy, first, o1 - o0, yt, Pair);
                    PackTransposed(dy + (long)(t0 + Tile) * lddy + o0, lddy, second, o1 - o0, yt + Tile, Pair);
                    if (UseAvx2) DotsAvx2(rs, cs, o0, o1, xt, yt, sums - p0);
                    else DotsPortable(rs, cs, o0, o1, xt, yt, sums - p0);
                }
                for (int o = o0; o < o1; o++)
                {
                    float* d = dw + (long)o * ldw;
                    for (int p = rs[o]; p < rs[o + 1]; p++)
                        d[cs[p]] = beta == 0f ? sums[p - p0] : MathF.FusedMultiplyAdd(beta, d[cs[p]], sums[p - p0]);
                }
            }
            long work = w.NonZeros * ((m + Pair - 1) / Pair) * Pair / tasks;
            if (threads <= 1 || tasks == 1) for (int t = 0; t < tasks; t++) Body(t);
            else CpuParallel.For(tasks, Body, work);
        }
    }

    /// <summary>sums[p] += dot(xt[col p], yt[row p - o0]) over the 32 token lanes, for the kept weights of rows [o0, o1).</summary>
    private static void DotsAvx2(int* rowStart, int* columns, int o0, int o1, float* xt, float* yt, float* sums)
    {
        for (int o = o0; o < o1; o++)
        {
            float* g = yt + (long)(o - o0) * Pair;
            var g0 = Avx.LoadVector256(g); var g1 = Avx.LoadVector256(g + 8);
            var g2 = Avx.LoadVector256(g + 16); var g3 = Avx.LoadVector256(g + 24);
            for (int p = rowStart[o], end = rowStart[o + 1]; p < end; p++)
            {
                float* xa = xt + (long)columns[p] * Pair;
                var a = Fma.MultiplyAdd(Avx.LoadVector256(xa + 8), g1, Avx.Multiply(Avx.LoadVector256(xa), g0));
                var b = Fma.MultiplyAdd(Avx.LoadVector256(xa + 24), g3, Avx.Multiply(Avx.LoadVector256(xa + 16), g2));
                var v = Avx.Add(a, b);
                var s4 = Sse.Add(v.GetLower(), v.GetUpper());
                var s2 = Sse.Add(s4, Sse.MoveHighToLow(s4, s4));
                sums[p] += Sse.AddScalar(s2, Sse.Shuffle(s2, s2, 0x55)).ToScalar();
            }
        }
    }

    /// <summary>The AVX2 kernel's arithmetic lane by lane: the same products, fused adds and reduction tree.</summary>
    private static void DotsPortable(int* rowStart, int* columns, int o0, int o1, float* xt, float* yt, float* sums)
    {
        float* v = stackalloc float[8];
        for (int o = o0; o < o1; o++)
        {
            float* g = yt + (long)(o - o0) * Pair;
            for (int p = rowStart[o], end = rowStart[o + 1]; p < end; p++)
            {
                float* xa = xt + (long)columns[p] * Pair;
                for (int j = 0; j < 8; j++)
                    v[j] = MathF.FusedMultiplyAdd(xa[8 + j], g[8 + j], xa[j] * g[j]) + MathF.FusedMultiplyAdd(xa[24 + j], g[24 + j], xa[16 + j] * g[16 + j]);
                float u0 = v[0] + v[4], u1 = v[1] + v[5], u2 = v[2] + v[6], u3 = v[3] + v[7];
                sums[p] += (u0 + u2) + (u1 + u3);
            }
        }
    }
}
