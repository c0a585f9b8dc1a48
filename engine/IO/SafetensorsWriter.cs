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
    public SafetensorsWriter Add(string name, Tensor tensor, long[]? shape = null)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        var dtype = SafetensorsDTypes.FromEngine(tensor.DType);
        long[] s = shape ?? tensor.Shape.ToArray().Select(d => (long)d).ToArray();
        long bytes = CheckShape(name, dtype, s);
        if (bytes != tensor.Length * tensor.DType.SizeInBytes())
            throw new ArgumentException($"tensor '{name}': shape [{string.Join(", ", s)}] does not match {tensor}", nameof(shape));
        return AddEntry(new Entry(name, dtype, s, bytes, stream => WriteTensor(tensor, stream)));
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

    private static void WriteTensor(Tensor t, Stream stream)
    {
        const int Chunk = 1 << 20;
        for (long start = 0; start < t.Length; start += Chunk)
        {
            int n = (int)Math.Min(Chunk, t.Length - start);
            var part = t.Slice(start, n);
            switch (t.DType)
            {
                case DType.F32: WriteChunk<float>(part, n, stream); break;
                case DType.I32: WriteChunk<int>(part, n, stream); break;
                case DType.BF16: WriteChunk<ushort>(part, n, stream); break;
                case DType.U8: WriteChunk<byte>(part, n, stream); break;
                default: throw new ArgumentException($"{t}: dtype {t.DType} cannot be written");
            }
        }
    }

    private static void WriteChunk<T>(Tensor part, int n, Stream stream) where T : unmanaged
    {
        var buffer = ArrayPool<T>.Shared.Rent(n);
        try
        {
            part.Backend.CopyToHost<T>(part, buffer.AsSpan(0, n));
            stream.Write(MemoryMarshal.AsBytes(buffer.AsSpan(0, n)));
        }
        finally { ArrayPool<T>.Shared.Return(buffer); }
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
