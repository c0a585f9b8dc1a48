using System.Runtime.Intrinsics;
using NativeSparsity.Engine.Tensors;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace NativeSparsity.Engine.Backends.Cpu;

public sealed unsafe partial class CpuBackend
{
    /// <summary>Columns per task of a column reduction: one 64-byte cache line of floats per row.</summary>
    private const int ColumnBlock = 16;

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
        // Parallel over column blocks: each column is summed over all rows by one task, in row
        // order and in double, so the result does not depend on how many threads run.
        int blocks = (cols + ColumnBlock - 1) / ColumnBlock;
        CpuParallel.For(blocks, block =>
        {
            int c0 = block * ColumnBlock, width = Math.Min(ColumnBlock, cols - c0);
            double* acc = stackalloc double[ColumnBlock];
            ColumnSums(pdy + c0, rows, cols, width, acc);
            for (int j = 0; j < width; j++) pdb[c0 + j] += (float)acc[j];
        }, (long)rows * ColumnBlock);
    }

    /// <summary>acc[j] = sum over r of p[r*stride + j] in double, for j &lt; width &lt;= <see cref="ColumnBlock"/>.</summary>
    private static void ColumnSums(float* p, int rows, int stride, int width, double* acc)
    {
        if (width == ColumnBlock)
        {
            Vector256<double> a0 = default, a1 = default, a2 = default, a3 = default;
            for (int r = 0; r < rows; r++)
            {
                float* row = p + (long)r * stride;
                var (l0, h0) = Vector256.Widen(Vector256.Load(row));
                var (l1, h1) = Vector256.Widen(Vector256.Load(row + 8));
                a0 += l0; a1 += h0; a2 += l1; a3 += h1;
            }
            a0.Store(acc); a1.Store(acc + 4); a2.Store(acc + 8); a3.Store(acc + 12);
            return;
        }
        for (int j = 0; j < width; j++) acc[j] = 0;
        for (int r = 0; r < rows; r++)
        {
            float* row = p + (long)r * stride;
            for (int j = 0; j < width; j++) acc[j] += row[j];
        }
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
