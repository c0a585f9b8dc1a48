using System.Runtime.InteropServices;

namespace NativeSparsity.Engine.IO;

// The sparse-bitmask side of SafetensorsFile: finding and checking the compressed groups on
// opening, and the one raw read that decodes them (every typed read goes through CopyRaw).
public sealed unsafe partial class SafetensorsFile
{
    // ---- sparse-bitmask groups ---------------------------------------------------------------

    // Every PREFIX.bitmask starts a group; its three siblings must be there and PREFIX.weight must not.
    private List<SafetensorsTensorInfo> DenseView()
    {
        var groups = new Dictionary<string, SafetensorsTensorInfo>(StringComparer.Ordinal);
        var members = new HashSet<string>(StringComparer.Ordinal);
        foreach (var t in StoredTensors)
        {
            if (!t.Name.EndsWith(SparseBitmask.BitmaskSuffix, StringComparison.Ordinal)) continue;
            string prefix = t.Name[..^SparseBitmask.BitmaskSuffix.Length];
            SafetensorsTensorInfo Member(string suffix) => _storedByName.TryGetValue(prefix + suffix, out var m) ? m
                : throw new SafetensorsException(FilePath, prefix + suffix, $"missing: '{t.Name}' starts a {SparseBitmask.FormatName} tensor, which needs {prefix}{suffix} too");
            var values = Member(SparseBitmask.ValuesSuffix);
            var shapeInfo = Member(SparseBitmask.ShapeSuffix);
            var offsetsInfo = Member(SparseBitmask.RowOffsetsSuffix);
            string weight = prefix + SparseBitmask.WeightSuffix;
            if (_storedByName.ContainsKey(weight))
                throw new SafetensorsException(FilePath, weight, $"stored both dense and as {SparseBitmask.FormatName} ('{t.Name}')");
            long[] shape = ReadIndexTensor(shapeInfo), offsets = ReadIndexTensor(offsetsInfo);
            var rowStart = SparseBitmask.Validate(FilePath, prefix, values, t, StoredSpan(t), shapeInfo, shape, offsetsInfo, offsets);
            var group = new SparseBitmaskTensor(prefix, values, t, shapeInfo, offsetsInfo, shape[0], shape[1], rowStart);
            groups[prefix] = new SafetensorsTensorInfo(weight, values.DType, shape, -1, -1) { Compressed = group };
            members.UnionWith(new[] { t.Name, values.Name, shapeInfo.Name, offsetsInfo.Name });
        }
        if (groups.Count == 0) return StoredTensors.ToList();
        var view = new List<SafetensorsTensorInfo>();
        foreach (var t in StoredTensors)
        {
            if (!members.Contains(t.Name)) view.Add(t);
            else if (t.Name.EndsWith(SparseBitmask.BitmaskSuffix, StringComparison.Ordinal))
                view.Add(groups[t.Name[..^SparseBitmask.BitmaskSuffix.Length]]);
        }
        return view;
    }

    /// <summary>A stored I64 or I32 tensor (a shape or offsets) as longs.</summary>
    private long[] ReadIndexTensor(SafetensorsTensorInfo info)
    {
        if (info.Shape.Length != 1)
            throw new SafetensorsException(FilePath, info.Name, $"has shape [{string.Join(", ", info.Shape)}], expected a 1-D integer tensor");
        var bytes = StoredSpan(info);
        return info.DType switch
        {
            SafetensorsDType.I64 => MemoryMarshal.Cast<byte, long>(bytes).ToArray(),
            SafetensorsDType.I32 => MemoryMarshal.Cast<byte, int>(bytes).ToArray().Select(v => (long)v).ToArray(),
            _ => throw new SafetensorsException(FilePath, info.Name, $"dtype {info.DType}, expected I64 (or I32)"),
        };
    }

    private ReadOnlySpan<byte> StoredSpan(SafetensorsTensorInfo info)
    {
        if (info.ByteLength > int.MaxValue)
            throw new SafetensorsException(FilePath, info.Name, $"{info.ByteLength} bytes are too many for a {SparseBitmask.FormatName} part");
        return new ReadOnlySpan<byte>(DataPointer(info), (int)info.ByteLength);
    }

    /// <summary>
    /// The raw little-endian bytes of elements [start, start + dst.Length / element size) of a
    /// tensor, decoded when it is stored in sparse-bitmask layout. Every read goes through here.
    /// </summary>
    public void ReadRaw(string name, long start, Span<byte> dst) => CopyRaw(Get(name), start, dst);

    private void CopyRaw(SafetensorsTensorInfo info, long start, Span<byte> dst)
    {
        int size = info.DType.SizeInBytes();
        long count = dst.Length / size;
        CheckRange(info, start, count);
        if (info.Compressed is not { } c)
        {
            new ReadOnlySpan<byte>(DataPointer(info) + start * size, dst.Length).CopyTo(dst);
            return;
        }
        var mask = StoredSpan(c.Bitmask);
        byte* values = DataPointer(c.Values);
        int bytesPerRow = (int)c.BytesPerRow, written = 0;
        for (long pos = start, end = start + count; pos < end;)
        {
            long r = pos / c.Cols, c0 = pos % c.Cols, c1 = Math.Min(c.Cols, c0 + (end - pos));
            var rowValues = new ReadOnlySpan<byte>(values + c.RowStart[r] * size, (int)((c.RowStart[r + 1] - c.RowStart[r]) * size));
            int n = (int)(c1 - c0) * size;
            SparseBitmask.DecodeRow(mask.Slice((int)(r * bytesPerRow), bytesPerRow), rowValues, size, c0, c1, dst.Slice(written, n));
            written += n;
            pos += c1 - c0;
        }
    }
}
