using System.Buffers;
using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text.Json;
using NativeSparsity.Engine.Tensors;

namespace NativeSparsity.Engine.IO;

/// <summary>
/// Collects named tensors and writes one safetensors file. The output is deterministic: tensors
/// are laid out by element size (largest first, so every tensor stays aligned to its element size)
/// then by name in ordinal order, whatever order they were added in; the header is padded with
/// spaces to a multiple of 8 bytes. The file is written atomically (see <see cref="AtomicFile"/>).
/// </summary>
public sealed class SafetensorsWriter
{
    private sealed record Entry(string Name, SafetensorsDType DType, long[] Shape, long ByteLength, Action<Stream> WriteData);

    private readonly Dictionary<string, Entry> _entries = new(StringComparer.Ordinal);
    private readonly SortedDictionary<string, string> _metadata = new(StringComparer.Ordinal);

    public int Count => _entries.Count;

    public SafetensorsWriter SetMetadata(string key, string value)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(value);
        _metadata[key] = value;
        return this;
    }

    /// <summary>Raw little-endian bytes; their length must match the shape and dtype.</summary>
    public SafetensorsWriter Add(string name, SafetensorsDType dtype, long[] shape, ReadOnlyMemory<byte> data)
    {
        long bytes = CheckShape(name, dtype, shape);
        if (bytes != data.Length)
            throw new ArgumentException($"tensor '{name}': shape [{string.Join(", ", shape)}] of {dtype} needs {bytes} bytes, got {data.Length}", nameof(data));
        return AddEntry(new Entry(name, dtype, (long[])shape.Clone(), bytes, s => s.Write(data.Span)));
    }

    public SafetensorsWriter Add(string name, float[] data, params long[] shape) =>
        Add(name, SafetensorsDType.F32, Shape(shape, data.Length), MemoryMarshal.AsBytes(data.AsSpan()).ToArray());

    public SafetensorsWriter Add(string name, int[] data, params long[] shape) =>
        Add(name, SafetensorsDType.I32, Shape(shape, data.Length), MemoryMarshal.AsBytes(data.AsSpan()).ToArray());

    public SafetensorsWriter Add(string name, byte[] data, params long[] shape) =>
        Add(name, SafetensorsDType.U8, Shape(shape, data.Length), data);

    /// <summary>
    /// A tensor of any backend, copied to the host in chunks while the file is written (never as
    /// one big array). Its contents must not change until <see cref="Write"/> returns.
    /// </summary>
    public SafetensorsWriter Add(string name, Tensor tensor, long[]? shape = null) =>
        Add(name, SafetensorsDTypes.FromEngine(tensor.DType), TensorShape(name, tensor, shape), (start, dst) => ReadTensorRaw(tensor, start, dst));

    /// <summary>
    /// A tensor whose raw little-endian elements <paramref name="readRaw"/>(start, dst) supplies in
    /// chunks while the file is written (e.g. from another <see cref="SafetensorsFile"/>, which must stay open).
    /// </summary>
    public SafetensorsWriter Add(string name, SafetensorsDType dtype, long[] shape, Action<long, Span<byte>> readRaw)
    {
        long bytes = CheckShape(name, dtype, shape);
        int size = dtype.SizeInBytes();
        return AddEntry(new Entry(name, dtype, (long[])shape.Clone(), bytes, stream =>
        {
            const int Chunk = 1 << 20;
            long count = bytes / size;
            var buffer = ArrayPool<byte>.Shared.Rent((int)Math.Min(Chunk, Math.Max(count, 1)) * size);
            try
            {
                for (long start = 0; start < count; start += Chunk)
                {
                    int n = (int)Math.Min(Chunk, count - start) * size;
                    readRaw(start, buffer.AsSpan(0, n));
                    stream.Write(buffer, 0, n);
                }
            }
            finally { ArrayPool<byte>.Shared.Return(buffer); }
        }));
    }

    /// <summary>
    /// A rows x cols matrix in compressed-tensors' sparse-bitmask layout under PREFIX.compressed,
    /// .bitmask, .shape and .row_offsets (PREFIX = <paramref name="weightName"/> without ".weight").
    /// The bitmask is built now (one pass over the elements); the kept values are gathered in a
    /// second pass while the file is written, so the source must not change until then.
    /// Returns the number of kept values.
    /// </summary>
    public long AddSparseBitmask(string weightName, SafetensorsDType dtype, long rows, long cols, Action<long, Span<byte>> readRaw)
    {
        string prefix = SparseBitmask.PrefixOf(weightName);
        CheckShape(weightName, dtype, new[] { rows, cols });
        int size = dtype.SizeInBytes();
        long bytesPerRow = SparseBitmask.BytesPerRow(cols);
        var bitmask = new byte[checked(rows * bytesPerRow)];
        var kept = new long[rows];
        int rowsPerChunk = (int)Math.Clamp((1 << 20) / Math.Max(cols, 1), 1, Math.Max(rows, 1));
        void ForChunks(Action<long, int, byte[]> body)
        {
            var raw = ArrayPool<byte>.Shared.Rent(checked((int)(rowsPerChunk * cols * size)));
            try
            {
                for (long r = 0; r < rows; r += rowsPerChunk)
                {
                    int n = (int)Math.Min(rowsPerChunk, rows - r);
                    readRaw(r * cols, raw.AsSpan(0, (int)(n * cols * size)));
                    body(r, n, raw);
                }
            }
            finally { ArrayPool<byte>.Shared.Return(raw); }
        }
        ForChunks((r, n, raw) => SparseBitmask.EncodeRows(raw.AsSpan(0, (int)(n * cols * size)), size, cols,
            bitmask.AsSpan((int)(r * bytesPerRow), (int)(n * bytesPerRow)), kept.AsSpan((int)r, n)));
        var offsets = new long[rows];
        long total = 0;
        for (long r = 0; r < rows; r++) { offsets[r] = total; total += kept[r]; }

        AddEntry(new Entry(prefix + SparseBitmask.ValuesSuffix, dtype, new[] { total }, total * size, stream =>
        {
            var gathered = new byte[rowsPerChunk * cols * size];
            ForChunks((_, n, raw) => stream.Write(gathered, 0, SparseBitmask.GatherKept(raw.AsSpan(0, (int)(n * cols * size)), size, gathered)));
        }));
        Add(prefix + SparseBitmask.BitmaskSuffix, SafetensorsDType.U8, new[] { rows, bytesPerRow }, bitmask);
        Add(prefix + SparseBitmask.ShapeSuffix, SafetensorsDType.I64, new long[] { 2 }, MemoryMarshal.AsBytes(new[] { rows, cols }.AsSpan()).ToArray());
        Add(prefix + SparseBitmask.RowOffsetsSuffix, SafetensorsDType.I64, new[] { rows }, MemoryMarshal.AsBytes(offsets.AsSpan()).ToArray());
        return total;
    }

    /// <summary>A 2-D tensor of any backend in sparse-bitmask layout (see the overload above).</summary>
    public long AddSparseBitmask(string weightName, Tensor tensor, long rows, long cols)
    {
        TensorShape(weightName, tensor, new[] { rows, cols });
        return AddSparseBitmask(weightName, SafetensorsDTypes.FromEngine(tensor.DType), rows, cols, (start, dst) => ReadTensorRaw(tensor, start, dst));
    }

    private static long[] TensorShape(string name, Tensor tensor, long[]? shape)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        long[] s = shape ?? tensor.Shape.ToArray().Select(d => (long)d).ToArray();
        long bytes = CheckShape(name, SafetensorsDTypes.FromEngine(tensor.DType), s);
        if (bytes != tensor.Length * tensor.DType.SizeInBytes())
            throw new ArgumentException($"tensor '{name}': shape [{string.Join(", ", s)}] does not match {tensor}", nameof(shape));
        return s;
    }

    private static long[] Shape(long[] shape, long length) => shape.Length == 0 ? new[] { length } : shape;

    private SafetensorsWriter AddEntry(Entry e)
    {
        if (!_entries.TryAdd(e.Name, e)) throw new ArgumentException($"tensor '{e.Name}' was already added", nameof(e.Name));
        return this;
    }

    private static long CheckShape(string name, SafetensorsDType dtype, long[] shape)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(shape);
        if (name.Length == 0 || name == SafetensorsFile.MetadataKey)
            throw new ArgumentException($"'{name}' cannot be a tensor name", nameof(name));
        long count = 1;
        foreach (long d in shape)
        {
            if (d < 0) throw new ArgumentException($"tensor '{name}': negative dimension in [{string.Join(", ", shape)}]", nameof(shape));
            count = checked(count * d);
        }
        return checked(count * dtype.SizeInBytes());
    }

    /// <summary>Raw elements [start, start + dst.Length / size) of a tensor of any backend.</summary>
    private static void ReadTensorRaw(Tensor t, long start, Span<byte> dst)
    {
        int n = dst.Length / t.DType.SizeInBytes();
        var part = t.Slice(start, n);
        switch (t.DType)
        {
            case DType.F32: part.Backend.CopyToHost(part, MemoryMarshal.Cast<byte, float>(dst)); break;
            case DType.I32: part.Backend.CopyToHost(part, MemoryMarshal.Cast<byte, int>(dst)); break;
            case DType.BF16: part.Backend.CopyToHost(part, MemoryMarshal.Cast<byte, ushort>(dst)); break;
            case DType.U8: part.Backend.CopyToHost(part, dst); break;
            default: throw new ArgumentException($"{t}: dtype {t.DType} cannot be written");
        }
    }

    /// <summary>The tensors in file order.</summary>
    private List<Entry> Ordered() => _entries.Values
        .OrderByDescending(e => e.DType.SizeInBytes())
        .ThenBy(e => e.Name, StringComparer.Ordinal)
        .ToList();

    /// <summary>The header bytes (JSON plus space padding) that <see cref="Write"/> will write.</summary>
    public byte[] BuildHeader()
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            if (_metadata.Count > 0)
            {
                json.WriteStartObject(SafetensorsFile.MetadataKey);
                foreach (var (k, v) in _metadata) json.WriteString(k, v);
                json.WriteEndObject();
            }
            long offset = 0;
            foreach (var e in Ordered())
            {
                json.WriteStartObject(e.Name);
                json.WriteString("dtype", e.DType.ToString());
                json.WriteStartArray("shape");
                foreach (long d in e.Shape) json.WriteNumberValue(d);
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offset);
                json.WriteNumberValue(offset + e.ByteLength);
                json.WriteEndArray();
                json.WriteEndObject();
                offset += e.ByteLength;
            }
            json.WriteEndObject();
        }
        int length = (int)buffer.Length;
        int padded = (length + 7) / 8 * 8; // 8 + padded is then a multiple of 8 too
        var header = new byte[padded];
        buffer.GetBuffer().AsSpan(0, length).CopyTo(header);
        header.AsSpan(length).Fill((byte)' ');
        return header;
    }

    public void Write(string path)
    {
        byte[] header = BuildHeader();
        try
        {
            AtomicFile.Write(path, stream =>
            {
                Span<byte> lengthField = stackalloc byte[8];
                BinaryPrimitives.WriteUInt64LittleEndian(lengthField, (ulong)header.Length);
                stream.Write(lengthField);
                stream.Write(header);
                foreach (var e in Ordered())
                {
                    long before = stream.Position;
                    e.WriteData(stream);
                    if (stream.Position - before != e.ByteLength)
                        throw new SafetensorsException(path, e.Name, $"wrote {stream.Position - before} bytes, expected {e.ByteLength}");
                }
            });
        }
        catch (Exception e) when (e is IOException and not SafetensorsException || e is UnauthorizedAccessException)
        {
            throw new SafetensorsException(path, null, $"cannot write the file: {e.Message}", e);
        }
    }
}
