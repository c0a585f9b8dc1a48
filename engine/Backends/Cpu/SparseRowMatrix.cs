using System.Runtime.InteropServices;

namespace NativeSparsity.Engine.Backends.Cpu;

/// <summary>
/// A pruned weight matrix W [rows = out features, cols = in features] in compressed sparse rows:
/// for output row o, its kept weights are Values[RowStart[o] .. RowStart[o + 1]) at input columns
/// Columns[...] in increasing order. An element is kept when its bits are not all zero (what the
/// mask pruned is exactly +0.0), as in the sparse-bitmask checkpoint layout, whose row offsets and
/// value order are the same. Arrays are pinned so the kernels read them by pointer.
/// </summary>
public sealed class SparseRowMatrix
{
    private SparseRowMatrix(int rows, int cols, int[] rowStart, int[] columns, float[] values)
    {
        Rows = rows;
        Cols = cols;
        RowStart = rowStart;
        Columns = columns;
        Values = values;
    }

    public int Rows { get; }
    public int Cols { get; }
    internal int[] RowStart { get; }
    internal int[] Columns { get; }
    internal float[] Values { get; }

    public long NonZeros => RowStart[Rows];
    public double Density => Rows == 0 || Cols == 0 ? 0 : (double)NonZeros / ((long)Rows * Cols);

    /// <summary>Bytes of the three arrays (what the forward kernel streams per token tile).</summary>
    public long StorageBytes => 4L * (RowStart.Length + Columns.Length + Values.Length);

    /// <summary>Builds the matrix from a dense row-major [rows, cols] span.</summary>
    public static SparseRowMatrix FromDense(ReadOnlySpan<float> dense, int rows, int cols)
    {
        if (rows < 0 || cols < 0) throw new ArgumentException($"SparseRowMatrix: negative shape [{rows}, {cols}]");
        if (dense.Length != (long)rows * cols)
            throw new ArgumentException($"SparseRowMatrix: {dense.Length} values for shape [{rows}, {cols}]");
        var bits = MemoryMarshal.Cast<float, uint>(dense);
        long kept = 0;
        foreach (uint b in bits) if (b != 0) kept++;
        var rowStart = GC.AllocateUninitializedArray<int>(rows + 1, pinned: true);
        var columns = GC.AllocateUninitializedArray<int>(checked((int)kept), pinned: true);
        var values = GC.AllocateUninitializedArray<float>((int)kept, pinned: true);
        int p = 0;
        for (int o = 0; o < rows; o++)
        {
            rowStart[o] = p;
            var row = dense.Slice(o * cols, cols);
            var rowBits = bits.Slice(o * cols, cols);
            for (int i = 0; i < cols; i++)
            {
                if (rowBits[i] == 0) continue;
                columns[p] = i;
                values[p++] = row[i];
            }
        }
        rowStart[rows] = p;
        return new SparseRowMatrix(rows, cols, rowStart, columns, values);
    }

    /// <summary>Builds the matrix from a 2-D F32 tensor of any backend.</summary>
    public static SparseRowMatrix FromDense(Tensors.Tensor weight)
    {
        if (weight.Shape.Length != 2) throw new ArgumentException($"SparseRowMatrix: {weight} is not a matrix");
        var host = new float[weight.Length];
        weight.Backend.CopyToHost<float>(weight, host);
        return FromDense(host, weight.Shape[0], weight.Shape[1]);
    }

    /// <summary>The dense row-major matrix (pruned positions +0.0).</summary>
    public float[] ToDense()
    {
        var dense = new float[(long)Rows * Cols];
        for (int o = 0; o < Rows; o++)
            for (int p = RowStart[o]; p < RowStart[o + 1]; p++) dense[(long)o * Cols + Columns[p]] = Values[p];
        return dense;
    }
}
