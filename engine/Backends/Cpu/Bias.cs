using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using NativeSparsity.Engine.Tensors;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace NativeSparsity.Engine.Backends.Cpu;

public sealed unsafe partial class CpuBackend
{
    public void AddBias(Tensor y, Tensor bias, int rows, int cols)
    {
        ExpectMatrix(y, rows, cols, nameof(y));
        ExpectVector(bias, cols, nameof(bias));
        float* py = y.F32(), pb = bias.F32();
        CpuParallel.ForRows(rows, cols, (r0, r1) =>
        {
            var b = new ReadOnlySpan<float>(pb, cols);
            for (int r = r0; r < r1; r++)
            {
                var row = new Span<float>(py + (long)r * cols, cols);
                TensorPrimitives.Add(row, b, row);
            }
        });
    }

    public void BiasGradient(Tensor dy, Tensor dbias, int rows, int cols)
    {
        ExpectMatrix(dy, rows, cols, nameof(dy));
        ExpectVector(dbias, cols, nameof(dbias));
        float* pdy = dy.F32(), pdb = dbias.F32();
        // Wide matrices (the MLM decoder's 8192-column bias) are cut into column blocks as well, so a
        // block's double partial (8 KiB) stays in L1 while the rows stream past.
        ReduceColumnsByRowChunks(rows, cols, cols, BiasColumnBlock, (r0, r1, c0, c1, partial) =>
        {
            for (int r = r0; r < r1; r++) AddRowToDouble(pdy + (long)r * cols + c0, partial + c0, c1 - c0);
        }, totals =>
        {
            for (int j = 0; j < cols; j++) pdb[j] += (float)totals[j];
        });
    }

    /// <summary>Rows per partial of a column reduction; fixed, so partial boundaries depend only on the shape.</summary>
    private const int ReductionRowChunk = 64;

    /// <summary>Columns per task of <see cref="BiasGradient"/> on wide matrices.</summary>
    private const int BiasColumnBlock = 1024;

    /// <summary>
    /// Accumulates rows [r0, r1), columns [c0, c1) into <c>partial[c0..c1)</c> (zeroed before the
    /// call), in row order.
    /// </summary>
    private delegate void RowChunkSums(int r0, int r1, int c0, int c1, double* partial);

    /// <summary>Receives the column totals of a reduction.</summary>
    private delegate void TotalsAction(double* totals);

    /// <summary>
    /// Column sums without strided walks: fixed chunks of <see cref="ReductionRowChunk"/> rows (times
    /// column blocks of <paramref name="blockWidth"/>) are streamed in memory order into per-chunk
    /// double partials of <paramref name="width"/> values (in parallel), which are then added in
    /// chunk order. Each total thus has one fixed order of additions, whatever the thread count.
    /// <paramref name="finish"/> receives the totals.
    /// </summary>
    private static void ReduceColumnsByRowChunks(int rows, int workPerRow, int width, int blockWidth, RowChunkSums chunkSums,
                                                 TotalsAction finish)
    {
        if (rows <= 0 || width <= 0) return;
        int chunks = (rows + ReductionRowChunk - 1) / ReductionRowChunk;
        int blocks = (width + blockWidth - 1) / blockWidth;
        double* partials = (double*)NativeMemory.AlignedAlloc((nuint)((long)chunks * width * sizeof(double)), 64);
        try
        {
            CpuParallel.For(chunks * blocks, task =>
            {
                int c = task / blocks, c0 = task % blocks * blockWidth, c1 = Math.Min(width, c0 + blockWidth);
                double* partial = partials + (long)c * width;
                new Span<double>(partial + c0, c1 - c0).Clear();
                int r0 = c * ReductionRowChunk;
                chunkSums(r0, Math.Min(rows, r0 + ReductionRowChunk), c0, c1, partial);
            }, (long)ReductionRowChunk * workPerRow / blocks);
            // Chunk partials into the first, in chunk order.
            for (int c = 1; c < chunks; c++) AddDouble(partials + (long)c * width, partials, width);
            finish(partials);
        }
        finally { NativeMemory.AlignedFree(partials); }
    }

    /// <summary>acc[j] += (double)row[j] for j &lt; n.</summary>
    private static void AddRowToDouble(float* row, double* acc, int n)
    {
        int j = 0;
        for (; j + 8 <= n; j += 8)
        {
            var (lo, hi) = Vector256.Widen(Vector256.Load(row + j));
            (Vector256.Load(acc + j) + lo).Store(acc + j);
            (Vector256.Load(acc + j + 4) + hi).Store(acc + j + 4);
        }
        for (; j < n; j++) acc[j] += row[j];
    }

    /// <summary>acc[j] += src[j] for j &lt; n.</summary>
    private static void AddDouble(double* src, double* acc, int n)
    {
        int j = 0;
        for (; j + 4 <= n; j += 4) (Vector256.Load(acc + j) + Vector256.Load(src + j)).Store(acc + j);
        for (; j < n; j++) acc[j] += src[j];
    }

    /// <summary>An F32 tensor holding at least rows*cols elements, with non-negative sizes.</summary>
    private static void ExpectMatrix(Tensor t, int rows, int cols, string name)
    {
        if (rows < 0 || cols < 0) throw new ArgumentOutOfRangeException(name, $"{name}: rows ({rows}) and cols ({cols}) must be non-negative");
        RequireF32(t, name);
        CpuTensor.ExpectLength(t, (long)rows * cols, $"{name} [{rows} x {cols}]");
    }

    private static void ExpectVector(Tensor t, int length, string name)
    {
        RequireF32(t, name);
        CpuTensor.ExpectLength(t, length, $"{name} [{length}]");
    }
}
