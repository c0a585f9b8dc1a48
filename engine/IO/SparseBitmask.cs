using System.Numerics;
using System.Runtime.InteropServices;

namespace NativeSparsity.Engine.IO;

/// <summary>
/// Where one compressed matrix lives in a safetensors file, in compressed-tensors' "sparse-bitmask"
/// layout: PREFIX.compressed (the kept values in row order, 1-D), PREFIX.bitmask (U8
/// [rows, ceil(cols/8)], bit j of byte b flags column 8b + j, numpy's bitorder="little"),
/// PREFIX.shape (I64 [2]: rows, cols) and PREFIX.row_offsets (I64 [rows]: where each row's values
/// start). It stands for the dense tensor PREFIX.weight. <see cref="RowStart"/> has rows + 1 entries.
/// </summary>
public sealed record SparseBitmaskTensor(
    string Prefix, SafetensorsTensorInfo Values, SafetensorsTensorInfo Bitmask, SafetensorsTensorInfo ShapeTensor,
    SafetensorsTensorInfo RowOffsets, long Rows, long Cols, long[] RowStart)
{
    public long BytesPerRow => SparseBitmask.BytesPerRow(Cols);
    public long Kept => RowStart[^1];
    public long StoredBytes => Values.ByteLength + Bitmask.ByteLength + ShapeTensor.ByteLength + RowOffsets.ByteLength;
}

/// <summary>
/// The one implementation of the sparse-bitmask encoding (writer) and decoding (reader). An element
/// is kept when its bit pattern is not all zeros: -0.0 and NaNs are stored like any value, so
/// decoding gives back the original bits exactly (compressed-tensors itself keeps `x != 0`, which
/// drops -0.0; its decoder reads our files all the same).
/// </summary>
public static class SparseBitmask
{
    public const string FormatName = "sparse-bitmask";
    public const string WeightSuffix = ".weight";
    public const string ValuesSuffix = ".compressed";
    public const string BitmaskSuffix = ".bitmask";
    public const string ShapeSuffix = ".shape";
    public const string RowOffsetsSuffix = ".row_offsets";

    public static long BytesPerRow(long cols) => (cols + 7) / 8;

    /// <summary>Bytes the four tensors take for a rows x cols matrix with <paramref name="kept"/> values.</summary>
    public static long StoredBytes(long rows, long cols, long kept, int elementSize) =>
        kept * elementSize + rows * BytesPerRow(cols) + 2 * 8 + rows * 8;

    /// <summary>The tensor-name prefix of a weight ("a.b.weight" -> "a.b"); the format restores only ".weight" tensors.</summary>
    public static string PrefixOf(string weightName) =>
        weightName.EndsWith(WeightSuffix, StringComparison.Ordinal) && weightName.Length > WeightSuffix.Length
            ? weightName[..^WeightSuffix.Length]
            : throw new ArgumentException($"tensor '{weightName}': only tensors named *{WeightSuffix} can be stored as {FormatName}");

    /// <summary>
    /// Writes the bitmask rows of row-major raw elements (<paramref name="raw"/> holds whole rows of
    /// <paramref name="cols"/> elements of <paramref name="elementSize"/> bytes) and each row's kept count.
    /// </summary>
    public static void EncodeRows(ReadOnlySpan<byte> raw, int elementSize, long cols, Span<byte> bitmask, Span<long> keptPerRow)
    {
        switch (elementSize)
        {
            case 1: EncodeRows(raw, cols, bitmask, keptPerRow); break;
            case 2: EncodeRows(MemoryMarshal.Cast<byte, ushort>(raw), cols, bitmask, keptPerRow); break;
            case 4: EncodeRows(MemoryMarshal.Cast<byte, uint>(raw), cols, bitmask, keptPerRow); break;
            case 8: EncodeRows(MemoryMarshal.Cast<byte, ulong>(raw), cols, bitmask, keptPerRow); break;
            default: throw new ArgumentOutOfRangeException(nameof(elementSize), elementSize, "element size must be 1, 2, 4 or 8");
        }
    }

    private static void EncodeRows<T>(ReadOnlySpan<T> raw, long cols, Span<byte> bitmask, Span<long> keptPerRow)
        where T : unmanaged, IBinaryInteger<T>
    {
        int bytesPerRow = (int)BytesPerRow(cols);
        bitmask.Clear();
        for (int r = 0; r < keptPerRow.Length; r++)
        {
            var row = raw.Slice((int)(r * cols), (int)cols);
            var mask = bitmask.Slice(r * bytesPerRow, bytesPerRow);
            long kept = 0;
            for (int j = 0; j < row.Length; j++)
            {
                if (row[j] == T.Zero) continue;
                mask[j >> 3] |= (byte)(1 << (j & 7));
                kept++;
            }
            keptPerRow[r] = kept;
        }
    }

    /// <summary>Copies the kept elements of whole rows to <paramref name="dst"/>; returns the bytes written.</summary>
    public static int GatherKept(ReadOnlySpan<byte> raw, int elementSize, Span<byte> dst)
    {
        int written = 0;
        for (int i = 0; i < raw.Length; i += elementSize)
        {
            var e = raw.Slice(i, elementSize);
            if (e.IndexOfAnyExcept((byte)0) < 0) continue;
            e.CopyTo(dst[written..]);
            written += elementSize;
        }
        return written;
    }

    /// <summary>
    /// Decodes columns [c0, c1) of one row: <paramref name="maskRow"/> is the row's bitmask,
    /// <paramref name="rowValues"/> its kept values; <paramref name="dst"/> gets (c1 - c0) raw elements.
    /// </summary>
    public static void DecodeRow(ReadOnlySpan<byte> maskRow, ReadOnlySpan<byte> rowValues, int elementSize, long c0, long c1, Span<byte> dst)
    {
        int v = KeptBefore(maskRow, c0) * elementSize;
        int o = 0;
        for (long j = c0; j < c1; j++, o += elementSize)
        {
            var target = dst.Slice(o, elementSize);
            if ((maskRow[(int)(j >> 3)] >> (int)(j & 7) & 1) != 0)
            {
                rowValues.Slice(v, elementSize).CopyTo(target);
                v += elementSize;
            }
            else target.Clear();
        }
    }

    /// <summary>Set bits of a bitmask row before column <paramref name="col"/>.</summary>
    public static int KeptBefore(ReadOnlySpan<byte> maskRow, long col)
    {
        int full = (int)(col >> 3), count = 0;
        for (int b = 0; b < full; b++) count += BitOperations.PopCount(maskRow[b]);
        int rest = (int)(col & 7);
        if (rest != 0) count += BitOperations.PopCount((uint)(maskRow[full] & ((1 << rest) - 1)));
        return count;
    }

    /// <summary>
    /// Checks one compressed matrix and returns its row starts (rows + 1 entries): the shape is two
    /// non-negative integers, the bitmask is U8 [rows, ceil(cols/8)] with the padding bits clear,
    /// row_offsets is [rows] and equals the running count of set bits, and the values tensor is 1-D
    /// holding exactly as many values as the bitmask has set bits. Each problem names its tensor.
    /// </summary>
    internal static long[] Validate(string path, string prefix, SafetensorsTensorInfo values, SafetensorsTensorInfo bitmask,
                                    ReadOnlySpan<byte> bitmaskBytes, SafetensorsTensorInfo shapeInfo, long[] shape,
                                    SafetensorsTensorInfo offsetsInfo, long[] offsets)
    {
        if (shape.Length != 2)
            throw new SafetensorsException(path, shapeInfo.Name, $"holds {shape.Length} dimensions [{string.Join(", ", shape)}]; only 2-D weights are supported");
        long rows = shape[0], cols = shape[1];
        if (rows < 0 || cols < 0)
            throw new SafetensorsException(path, shapeInfo.Name, $"shape [{rows}, {cols}] has a negative dimension");
        long bytesPerRow = BytesPerRow(cols);
        if (bitmask.DType != SafetensorsDType.U8 || !bitmask.Shape.SequenceEqual(new[] { rows, bytesPerRow }))
            throw new SafetensorsException(path, bitmask.Name,
                $"is {bitmask.DType}[{string.Join(", ", bitmask.Shape)}], expected U8[{rows}, {bytesPerRow}] for shape [{rows}, {cols}]");
        if (!offsetsInfo.Shape.SequenceEqual(new[] { rows }))
            throw new SafetensorsException(path, offsetsInfo.Name, $"has shape [{string.Join(", ", offsetsInfo.Shape)}], expected [{rows}] (one offset a row)");
        if (values.Shape.Length != 1)
            throw new SafetensorsException(path, values.Name, $"has shape [{string.Join(", ", values.Shape)}], expected a 1-D tensor of kept values");

        int padBits = (int)(bytesPerRow * 8 - cols);
        byte padMask = padBits == 0 ? (byte)0 : (byte)(0xFF << (8 - padBits));
        var start = new long[rows + 1];
        long running = 0;
        for (long r = 0; r < rows; r++)
        {
            if (offsets[r] != running)
                throw new SafetensorsException(path, offsetsInfo.Name,
                    $"row_offsets[{r}] = {offsets[r]}, but the bitmask rows before it hold {running} set bits (offsets out of order or not matching the bitmask)");
            var row = bitmaskBytes.Slice((int)(r * bytesPerRow), (int)bytesPerRow);
            if (padBits != 0 && (row[^1] & padMask) != 0)
                throw new SafetensorsException(path, bitmask.Name, $"row {r} sets padding bits past column {cols}");
            start[r] = running;
            foreach (byte b in row) running += BitOperations.PopCount(b);
        }
        start[rows] = running;
        if (running != values.ElementCount)
            throw new SafetensorsException(path, values.Name,
                $"holds {values.ElementCount} values but the bitmask of '{prefix}' has {running} set bits");
        return start;
    }
}
