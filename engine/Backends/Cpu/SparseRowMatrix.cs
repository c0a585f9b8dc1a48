using System.Runtime.InteropServices;

namespace NativeSparsity.Engine.Backends.Cpu;

/// <summary>
/// A pruned weight matrix W [rows = out features, cols = in features] in compressed sparse rows:
/// for output row o, its kept weights are Values[RowStart[o] .. RowStart[o + 1]) at input columns
/// Columns[...] in increasing order. An element is kept when its bits are not all zero (what the
/// mask pruned is exactly +0.0), as in the sparse-bitmask checkpoint layout, whose row offsets and
/// value order are the same. Arrays are pinned so the kernels read them by pointer.
/// <para>For fine-tuning with the mask fixed the pattern never changes while the weights do:
/// <see cref="RefreshValues"/> regathers the kept values from the dense weight, for this matrix
/// and for its <see cref="Transpose"/> (which serves dX = dY W as another forward product).</para>
/// </summary>
public sealed class SparseRowMatrix
{
    private SparseRowMatrix(int rows, int cols, int[] rowStart, int[] columns, float[] values, int[] sourceIndex, long sourceLength)
    {
        Rows = rows;
        Cols = cols;
        RowStart = rowStart;
        Columns = columns;
        Values = values;
        SourceIndex = sourceIndex;
        SourceLength = sourceLength;
    }

    public int Rows { get; }
    public int Cols { get; }
    internal int[] RowStart { get; }
    internal int[] Columns { get; }
    internal float[] Values { get; }

    /// <summary>For each stored value, its index in the dense row-major weight it came from.</summary>
    private int[] SourceIndex { get; }
    private long SourceLength { get; }

    public long NonZeros => RowStart[Rows];
    public double Density => Rows == 0 || Cols == 0 ? 0 : (double)NonZeros / ((long)Rows * Cols);

    /// <summary>Bytes of the three arrays (what the forward kernel streams per token tile).</summary>
    public long StorageBytes => 4L * (RowStart.Length + Columns.Length + Values.Length);

    /// <summary>
    /// Builds the matrix from a dense row-major [rows, cols] span. With <paramref name="keep"/> (a
    /// keep mask of the same length) the pattern is the mask's, so a kept weight that happens to be
    /// exactly zero stays in it and keeps getting gradients; without, the nonzero bits.
    /// </summary>
    public static SparseRowMatrix FromDense(ReadOnlySpan<float> dense, int rows, int cols, ReadOnlySpan<byte> keep = default)
    {
        if (rows < 0 || cols < 0) throw new ArgumentException($"SparseRowMatrix: negative shape [{rows}, {cols}]");
        if (dense.Length != (long)rows * cols)
            throw new ArgumentException($"SparseRowMatrix: {dense.Length} values for shape [{rows}, {cols}]");
        if (!keep.IsEmpty && keep.Length != dense.Length)
            throw new ArgumentException($"SparseRowMatrix: a keep mask of {keep.Length} bytes for {dense.Length} weights");
        var bits = MemoryMarshal.Cast<float, uint>(dense);
        bool maskGiven = !keep.IsEmpty;
        long kept = 0;
        for (int i = 0; i < bits.Length; i++) if (maskGiven ? keep[i] != 0 : bits[i] != 0) kept++;
        var rowStart = GC.AllocateUninitializedArray<int>(rows + 1, pinned: true);
        var columns = GC.AllocateUninitializedArray<int>(checked((int)kept), pinned: true);
        var values = GC.AllocateUninitializedArray<float>((int)kept, pinned: true);
        var source = new int[kept];
        int p = 0;
        for (int o = 0; o < rows; o++)
        {
            rowStart[o] = p;
            var row = dense.Slice(o * cols, cols);
            var rowBits = bits.Slice(o * cols, cols);
            var rowKeep = maskGiven ? keep.Slice(o * cols, cols) : default;
            for (int i = 0; i < cols; i++)
            {
                if (maskGiven ? rowKeep[i] == 0 : rowBits[i] == 0) continue;
                columns[p] = i;
                source[p] = o * cols + i;
                values[p++] = row[i];
            }
        }
        rowStart[rows] = p;
        return new SparseRowMatrix(rows, cols, rowStart, columns, values, source, (long)rows * cols);
    }

    /// <summary>W^T [cols, rows] with the same kept weights; its values refresh from the same dense W.</summary>
    public SparseRowMatrix Transpose()
    {
        var rowStart = GC.AllocateUninitializedArray<int>(Cols + 1, pinned: true);
        var columns = GC.AllocateUninitializedArray<int>(Columns.Length, pinned: true);
        var values = GC.AllocateUninitializedArray<float>(Values.Length, pinned: true);
        var source = new int[Values.Length];
        var count = new int[Cols + 1];
        foreach (int c in Columns) count[c + 1]++;
        for (int c = 0; c < Cols; c++) count[c + 1] += count[c];
        Array.Copy(count, rowStart, Cols + 1);
        for (int o = 0; o < Rows; o++)   // rows in increasing order: each transposed row's columns come out sorted
            for (int p = RowStart[o]; p < RowStart[o + 1]; p++)
            {
                int q = count[Columns[p]]++;
                columns[q] = o;
                values[q] = Values[p];
                source[q] = SourceIndex[p];
            }
        return new SparseRowMatrix(Cols, Rows, rowStart, columns, values, source, SourceLength);
    }

    /// <summary>Regathers the kept values from the dense row-major weight this matrix (or the one it transposes) was built from.</summary>
    public void RefreshValues(ReadOnlySpan<float> dense)
    {
        if (dense.Length != SourceLength)
            throw new ArgumentException($"SparseRowMatrix.RefreshValues: {dense.Length} values, the source weight has {SourceLength}");
        for (int p = 0; p < Values.Length; p++) Values[p] = dense[SourceIndex[p]];
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
