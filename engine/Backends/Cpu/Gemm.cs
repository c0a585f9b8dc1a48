using NativeSparsity.Engine.Tensors;

namespace NativeSparsity.Engine.Backends.Cpu;

public sealed unsafe partial class CpuBackend
{
    /// <summary>When set, every GEMM call adds its wall time (Stopwatch ticks) and FLOPs here (`nsparse bench train`).</summary>
    public GemmProfile? Profile { get; set; }

    public void Gemm(bool transA, bool transB, int m, int n, int k, float alpha, Tensor a, int lda, Tensor b, int ldb, float beta, Tensor c, int ldc)
    {
        CpuGemm.CheckOperands("Gemm", transA, transB, m, n, k, a, lda, 0, b, ldb, 0, c, ldc, 0, 1);
        long start = Profile != null ? System.Diagnostics.Stopwatch.GetTimestamp() : 0;
        CpuGemm.Run(transA, transB, m, n, k, alpha, a.F32(), lda, b.F32(), ldb, beta, c.F32(), ldc, CpuParallel.MaxThreads);
        Profile?.Add(System.Diagnostics.Stopwatch.GetTimestamp() - start, 2.0 * m * n * k);
    }

    public void GemmStridedBatched(bool transA, bool transB, int m, int n, int k, float alpha, Tensor a, int lda, long strideA,
                                   Tensor b, int ldb, long strideB, float beta, Tensor c, int ldc, long strideC, int batch)
    {
        CpuGemm.CheckOperands("GemmStridedBatched", transA, transB, m, n, k, a, lda, strideA, b, ldb, strideB, c, ldc, strideC, batch);
        long start = Profile != null ? System.Diagnostics.Stopwatch.GetTimestamp() : 0;
        CpuGemm.RunBatched(transA, transB, m, n, k, alpha, a.F32(), lda, strideA, b.F32(), ldb, strideB,
                           beta, c.F32(), ldc, strideC, batch, CpuParallel.MaxThreads);
        Profile?.Add(System.Diagnostics.Stopwatch.GetTimestamp() - start, 2.0 * m * n * k * batch);
    }
}

/// <summary>Accumulated GEMM time and work, for the training benchmark's "share of time in GEMM".</summary>
public sealed class GemmProfile
{
    public long Ticks;
    public double Flops;
    public long Calls;

    public void Add(long ticks, double flops) { Ticks += ticks; Flops += flops; Calls++; }
    public double Seconds => Ticks / (double)System.Diagnostics.Stopwatch.Frequency;
    public void Reset() { Ticks = 0; Flops = 0; Calls = 0; }
}

/// <summary>
/// Row-major SGEMM: C = alpha * op(A) * op(B) + beta * C, blocked the BLIS way: op(B) packed into
/// NR-column slivers, op(A) into MR-row slivers of MC x KC blocks, a register-blocked micro-kernel
/// over the tiles (<see cref="PackedSerial"/>, <see cref="PackedParallel"/>). K is never split
/// across threads, and every kernel computes each element with the same FMA chain whichever tile or
/// task it falls in, so results are bitwise identical for any thread count. Tiny problems skip
/// packing (<see cref="Direct"/>); batches of small matrices run one matrix per task.
/// </summary>
internal static unsafe class CpuGemm
{
    /// <summary>Tests force a kernel here (Auto = the best the CPU runs natively).</summary>
    internal static GemmKernelKind ForcedKernel { get; set; } = GemmKernelKind.Auto;

    /// <summary>Tests force the direct (unpacked) or the packed path here; Auto chooses by size.</summary>
    internal static GemmPath ForcedPath { get; set; } = GemmPath.Auto;

    /// <summary>Problems up to this many multiply-adds skip packing (m * n * k). The scalar loops run at about
    /// 1.5 GFLOP/s; packing pays from about 16^3 on (the per-head attention products of 20-24-token batches ran
    /// 4x faster packed: docs/PERFORMANCE.md). Both paths give the same bits, so this is a speed choice only.</summary>
    private const long DirectMaxVolume = 16 * 16 * 16;

    /// <summary>Floating-point work (2mnk) a thread should get before another one is worth waking.</summary>
    private const long FlopsPerThread = 4_000_000;

    /// <summary>Batched GEMMs up to this much work per matrix run one matrix per thread.</summary>
    private const long BatchParallelMaxFlops = 64_000_000;

    /// <summary>Tasks per thread in the packed path's parallel phases (load balance against task overhead).</summary>
    private const int ChunksPerThread = 4;

    /// <summary>Size cap of the whole-depth packed B panel of the threaded path (16 MiB: within L3).</summary>
    private const long ParallelPanelFloats = 4L << 20;

    internal enum GemmPath { Auto, Direct, Packed }

    // ---- argument checks ------------------------------------------------------------------------

    internal static void CheckOperands(string op, bool transA, bool transB, int m, int n, int k,
                                       Tensor a, int lda, long strideA, Tensor b, int ldb, long strideB,
                                       Tensor c, int ldc, long strideC, int batch)
    {
        if (m < 0 || n < 0 || k < 0) throw new ArgumentException($"{op}: m, n, k must be non-negative, got m={m}, n={n}, k={k}");
        if (batch < 0) throw new ArgumentException($"{op}: batch must be non-negative, got {batch}");
        if (strideA < 0 || strideB < 0 || strideC < 0)
            throw new ArgumentException($"{op}: strides must be non-negative, got strideA={strideA}, strideB={strideB}, strideC={strideC}");
        CheckMatrix(op, "a", a, transA ? k : m, transA ? m : k, lda, strideA, batch, transA ? "[k, m] (transA)" : "[m, k]");
        CheckMatrix(op, "b", b, transB ? n : k, transB ? k : n, ldb, strideB, batch, transB ? "[n, k] (transB)" : "[k, n]");
        CheckMatrix(op, "c", c, m, n, ldc, strideC, batch, "[m, n]");
        if (batch > 1 && strideC < (long)(m - 1) * ldc + n && m > 0 && n > 0)
            throw new ArgumentException($"{op}: strideC={strideC} makes the {batch} C matrices [{m}, {n}] with ldc={ldc} overlap");
    }

    private static void CheckMatrix(string op, string name, Tensor t, int rows, int cols, int ld, long stride, int batch, string layout)
    {
        CpuTensor.Expect(t, DType.F32);
        if (ld < Math.Max(1, cols))
            throw new ArgumentException($"{op}: ld{name}={ld} is smaller than the {cols} columns of {name} stored as {layout}");
        long extent = rows == 0 || cols == 0 || batch == 0 ? 0 : (long)(batch - 1) * stride + (long)(rows - 1) * ld + cols;
        if (t.Length < extent)
            throw new ArgumentException(
                $"{op}: {name} ({t}) holds {t.Length} elements; {batch} matrix(es) {layout} = [{rows}, {cols}] with ld{name}={ld}" +
                (batch > 1 ? $" and stride {stride}" : "") + $" need {extent}");
    }

    // ---- entry points ---------------------------------------------------------------------------

    internal static void RunBatched(bool transA, bool transB, int m, int n, int k, float alpha,
                                    float* a, int lda, long strideA, float* b, int ldb, long strideB,
                                    float beta, float* c, int ldc, long strideC, int batch, int threads)
    {
        if (batch == 0 || m == 0 || n == 0) return;
        long flops = 2L * m * n * k;
        if (threads > 1 && batch >= threads && flops <= BatchParallelMaxFlops)
        {
            // Small matrices (attention scores and contexts): one matrix per task, each computed
            // exactly as a single-threaded GEMM, so the result is independent of the scheduling.
            CpuParallel.For(batch, i => Run(transA, transB, m, n, k, alpha, a + i * strideA, lda, b + i * strideB, ldb,
                                            beta, c + i * strideC, ldc, 1));
            return;
        }
        for (int i = 0; i < batch; i++)
            Run(transA, transB, m, n, k, alpha, a + i * strideA, lda, b + i * strideB, ldb, beta, c + i * strideC, ldc, threads);
    }

    internal static void Run(bool transA, bool transB, int m, int n, int k, float alpha,
                             float* a, int lda, float* b, int ldb, float beta, float* c, int ldc, int threads)
    {
        if (m == 0 || n == 0) return;
        if (k == 0 || alpha == 0f)
        {
            ScaleC(m, n, beta, c, ldc);
            return;
        }
        bool direct = ForcedPath switch
        {
            GemmPath.Direct => true,
            GemmPath.Packed => false,
            _ => (long)m * n * k <= DirectMaxVolume,
        };
        if (direct)
        {
            Direct(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
            return;
        }
        int useful = (int)Math.Clamp(2L * m * n * k / FlopsPerThread, 1, int.MaxValue);
        Packed(GemmMicroKernel.Get(ForcedKernel), transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc,
               Math.Max(1, Math.Min(threads, useful)));
    }

    /// <summary>C = beta * C, with beta == 0 writing zeros whatever C held (NaN included).</summary>
    private static void ScaleC(int m, int n, float beta, float* c, int ldc)
    {
        if (beta == 1f) return;
        for (int i = 0; i < m; i++)
        {
            var row = new Span<float>(c + (long)i * ldc, n);
            if (beta == 0f) row.Clear();
            else System.Numerics.Tensors.TensorPrimitives.Multiply(row, beta, row);
        }
    }

    // ---- small problems: no packing -------------------------------------------------------------

    /// <summary>
    /// Plain loops for tiny problems, where packing would cost more than the arithmetic. Each
    /// element is one FMA chain over k, then the same alpha/beta update as the micro-kernels.
    /// </summary>
    private static void Direct(bool transA, bool transB, int m, int n, int k, float alpha,
                               float* a, int lda, float* b, int ldb, float beta, float* c, int ldc)
    {
        long aRow = transA ? 1 : lda, aCol = transA ? lda : 1;   // op(A)[i, p] = a[i * aRow + p * aCol]
        long bRow = transB ? 1 : ldb, bCol = transB ? ldb : 1;   // op(B)[p, j] = b[p * bRow + j * bCol]
        for (int i = 0; i < m; i++)
        {
            float* ai = a + i * aRow;
            float* ci = c + (long)i * ldc;
            for (int j = 0; j < n; j++)
            {
                float* bj = b + j * bCol;
                float acc = 0f;
                for (int p = 0; p < k; p++) acc = MathF.FusedMultiplyAdd(ai[p * aCol], bj[p * bRow], acc);
                ci[j] = beta == 0f ? alpha * acc : MathF.FusedMultiplyAdd(alpha, acc, beta * ci[j]);
            }
        }
    }

    // ---- packed, blocked, threaded --------------------------------------------------------------

    private static void Packed(GemmMicroKernel kern, bool transA, bool transB, int m, int n, int k, float alpha,
                               float* a, int lda, float* b, int ldb, float beta, float* c, int ldc, int threads)
    {
        // Even K blocks (300 -> 150 + 150, not 256 + 44): a function of k alone, like the result.
        int kBlocks = (k + kern.KC - 1) / kern.KC;
        int kcMax = (k + kBlocks - 1) / kBlocks;
        if (threads == 1)
            PackedSerial(kern, transA, transB, m, n, k, kBlocks, kcMax, alpha, a, lda, b, ldb, beta, c, ldc);
        else
            PackedParallel(kern, transA, transB, m, n, k, kBlocks, kcMax, alpha, a, lda, b, ldb, beta, c, ldc, threads);
    }

    /// <summary>One thread: the classic loop nest, one KC x NC panel of op(B) packed at a time (it stays in L3).</summary>
    private static void PackedSerial(GemmMicroKernel kern, bool transA, bool transB, int m, int n, int k, int kBlocks, int kcMax,
                                     float alpha, float* a, int lda, float* b, int ldb, float beta, float* c, int ldc)
    {
        int nr = kern.NR;
        float* packedB = GemmBuffer.ForB((long)kcMax * Math.Min(kern.NC, RoundUp(n, nr)));
        for (int jc = 0; jc < n; jc += kern.NC)
        {
            int nc = Math.Min(kern.NC, n - jc);
            int nSlivers = (nc + nr - 1) / nr;
            for (int kb = 0; kb < kBlocks; kb++)
            {
                int p0 = kb * kcMax;
                int kc = Math.Min(kcMax, k - p0);
                GemmPacking.PackB(nr, b, ldb, transB, p0, kc, jc, nc, 0, nSlivers, packedB);
                // Later K blocks accumulate onto the first.
                Macro(kern, transA, 0, m, jc, nc, 0, nSlivers, p0, kc, alpha, a, lda, packedB, kb == 0 ? beta : 1f, c, ldc);
            }
        }
    }

    /// <summary>
    /// Several threads: the whole depth of a column panel of op(B) is packed in one parallel phase,
    /// then tasks (row blocks of C, cut into column ranges only when there are too few row blocks)
    /// each run every K block of their part in order. Two synchronisations per panel instead of two
    /// per K block, which matters on a busy machine where any thread may be preempted; a task's C
    /// block also stays in L2 across its K blocks. Tasks are dealt dynamically, about
    /// ChunksPerThread a thread, so a preempted thread does not hold the others back.
    /// </summary>
    private static void PackedParallel(GemmMicroKernel kern, bool transA, bool transB, int m, int n, int k, int kBlocks, int kcMax,
                                       float alpha, float* a, int lda, float* b, int ldb, float beta, float* c, int ldc, int threads)
    {
        int mr = kern.MR, nr = kern.NR;
        int ncPanel = Math.Min(kern.NC, RoundUp(n, nr));
        ncPanel = Math.Min(ncPanel, Math.Max(nr, (int)(ParallelPanelFloats / ((long)kBlocks * kcMax) / nr * nr)));
        long slab = (long)kcMax * ncPanel;   // packed floats of one K block of the panel
        float* packedB = GemmBuffer.ForB(kBlocks * slab);

        int target = threads * ChunksPerThread;
        int mc = Math.Clamp(RoundUp((m + target - 1) / target, mr), Math.Min(kern.MC, 8 * mr), kern.MC);
        int mBlocks = (m + mc - 1) / mc;
        for (int jc = 0; jc < n; jc += ncPanel)
        {
            int nc = Math.Min(ncPanel, n - jc);
            int nSlivers = (nc + nr - 1) / nr;
            int jc0 = jc;
            int bParts = Math.Clamp((target + kBlocks - 1) / kBlocks, 1, nSlivers);
            CpuParallel.For(kBlocks * bParts, t =>
            {
                int kb = t / bParts, p0 = kb * kcMax;
                Split(nSlivers, bParts, t % bParts, out int s0, out int s1);
                GemmPacking.PackB(nr, b, ldb, transB, p0, Math.Min(kcMax, k - p0), jc0, nc, s0, s1, packedB + kb * slab);
            });
            int nParts = Math.Clamp((target + mBlocks - 1) / mBlocks, 1, nSlivers);
            CpuParallel.For(mBlocks * nParts, t =>
            {
                int i0 = t / nParts * mc, i1 = Math.Min(m, i0 + mc);
                Split(nSlivers, nParts, t % nParts, out int s0, out int s1);
                if (s0 >= s1) return;
                for (int kb = 0; kb < kBlocks; kb++)
                {
                    int p0 = kb * kcMax;
                    Macro(kern, transA, i0, i1, jc0, nc, s0, s1, p0, Math.Min(kcMax, k - p0), alpha, a, lda,
                          packedB + kb * slab, kb == 0 ? beta : 1f, c, ldc);
                }
            });
        }
    }

    /// <summary>Rows [i0, i1) of C against B slivers [s0, s1) of the packed panel at column jc.</summary>
    private static void Macro(GemmMicroKernel kern, bool transA, int i0, int i1, int jc, int nc, int s0, int s1,
                              int p0, int kc, float alpha, float* a, int lda, float* packedB, float beta, float* c, int ldc)
    {
        int mr = kern.MR, nr = kern.NR;
        var tile = kern.Tile;
        float* packedA = GemmBuffer.ForA((long)kern.MC * kc);
        for (int ic = i0; ic < i1; ic += kern.MC)
        {
            int mc = Math.Min(kern.MC, i1 - ic);
            GemmPacking.PackA(mr, a, lda, transA, ic, mc, p0, kc, packedA);
            for (int s = s0; s < s1; s++)
            {
                int j = s * nr;
                int ncols = Math.Min(nr, nc - j);
                float* bs = packedB + (long)s * nr * kc;
                float* cs = c + (long)ic * ldc + jc + j;
                for (int ir = 0; ir < mc; ir += mr)
                    tile(kc, packedA + (long)ir * kc, bs, cs + (long)ir * ldc, ldc, Math.Min(mr, mc - ir), ncols, alpha, beta);
            }
        }
    }

    /// <summary>Part <paramref name="index"/> of [0, count) cut into <paramref name="parts"/> near-equal runs.</summary>
    private static void Split(int count, int parts, int index, out int start, out int end)
    {
        start = (int)((long)count * index / parts);
        end = (int)((long)count * (index + 1) / parts);
    }

    private static int RoundUp(int x, int multiple) => (x + multiple - 1) / multiple * multiple;
}
