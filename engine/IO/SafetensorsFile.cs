using System.Buffers;
using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.IO.MemoryMappedFiles;
using System.Text.Json;
using NativeSparsity.Engine.Backends;
using NativeSparsity.Engine.Backends.Cpu;
using NativeSparsity.Engine.Tensors;

namespace NativeSparsity.Engine.IO;

/// <summary>
/// One tensor's entry in a safetensors header; offsets are relative to the data buffer. A dense
/// tensor stored in sparse-bitmask layout appears as one entry with <see cref="Compressed"/> set
/// (its offsets are -1: its bytes are those of the four stored tensors).
/// </summary>
public sealed record SafetensorsTensorInfo(string Name, SafetensorsDType DType, long[] Shape, long Begin, long End)
{
    public SparseBitmaskTensor? Compressed { get; init; }
    public long ElementCount => Shape.Aggregate(1L, (a, d) => a * d);

    /// <summary>The dense size in bytes (for a stored tensor, End - Begin).</summary>
    public long ByteLength => ElementCount * DType.SizeInBytes();

    /// <summary>The bytes the tensor takes in the file.</summary>
    public long StoredBytes => Compressed?.StoredBytes ?? ByteLength;

    public override string ToString() => Compressed == null
        ? $"{Name}: {DType}[{string.Join(", ", Shape)}] bytes [{Begin}, {End})"
        : $"{Name}: {DType}[{string.Join(", ", Shape)}] {SparseBitmask.FormatName}, {Compressed.Kept} values kept, {StoredBytes} bytes";
}

/// <summary>
/// A validated, memory-mapped safetensors file: 8-byte little-endian header length N, N bytes of
/// UTF-8 JSON, then the data buffer. Opening checks the whole header (sizes, JSON, dtypes, shapes
/// against byte ranges, ranges covering the buffer exactly with no overlap or hole, duplicate
/// names) and throws <see cref="SafetensorsException"/> on the first problem. Tensor data is read
/// through the mapping, so files and tensors larger than 2 GB need no managed array of that size.
/// Matrices stored in compressed-tensors' sparse-bitmask layout (see <see cref="SparseBitmask"/>)
/// are checked on opening too and read like any dense tensor under their PREFIX.weight name:
/// <see cref="Tensors"/> lists that dense view, <see cref="StoredTensors"/> what the header holds.
/// </summary>
public sealed unsafe partial class SafetensorsFile : IDisposable
{
    public const string MetadataKey = "__metadata__";
    public const long MaxHeaderBytes = 100_000_000;

    private readonly Dictionary<string, SafetensorsTensorInfo> _byName;
    private readonly MemoryMappedFile? _map;
    private readonly MemoryMappedViewAccessor? _view;
    private byte* _base;

    private readonly Dictionary<string, SafetensorsTensorInfo> _storedByName;

    private SafetensorsFile(string path, long fileLength, long dataStart, List<SafetensorsTensorInfo> tensors,
                            Dictionary<string, string> metadata)
    {
        FilePath = path;
        DataStart = dataStart;
        DataLength = fileLength - dataStart;
        StoredTensors = tensors;
        Metadata = metadata;
        _storedByName = tensors.ToDictionary(t => t.Name, StringComparer.Ordinal);
        if (fileLength > 0)
        {
            _map = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
            _view = _map.CreateViewAccessor(0, fileLength, MemoryMappedFileAccess.Read);
            byte* p = null;
            _view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
            _base = p + _view.PointerOffset;
        }
        try { Tensors = DenseView(); }
        catch
        {
            Dispose();
            throw;
        }
        _byName = Tensors.ToDictionary(t => t.Name, StringComparer.Ordinal);
    }

    public string FilePath { get; }

    /// <summary>Byte position of the data buffer in the file (8 + header length).</summary>
    public long DataStart { get; }
    public long DataLength { get; }

    /// <summary>Tensors in header order, each sparse-bitmask group as one dense PREFIX.weight entry.</summary>
    public IReadOnlyList<SafetensorsTensorInfo> Tensors { get; }

    /// <summary>The tensors exactly as the header lists them.</summary>
    public IReadOnlyList<SafetensorsTensorInfo> StoredTensors { get; }
    public IReadOnlyDictionary<string, string> Metadata { get; }

    public bool Contains(string name) => _byName.ContainsKey(name);

    public SafetensorsTensorInfo Get(string name) =>
        _byName.TryGetValue(name, out var info) ? info : throw new SafetensorsException(FilePath, name, "no tensor of this name in the file");

    /// <summary>Whether any tensor is stored in sparse-bitmask layout.</summary>
    public bool HasCompressed => Tensors.Any(t => t.Compressed != null);

    public static SafetensorsFile Open(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        var (fileLength, headerLength, tensors, metadata) = ReadHeader(path);
        return new SafetensorsFile(path, fileLength, 8 + headerLength, tensors, metadata);
    }

    // ---- header ----------------------------------------------------------------------------

    private static (long, long, List<SafetensorsTensorInfo>, Dictionary<string, string>) ReadHeader(string path)
    {
        byte[] header;
        long fileLength, headerLength;
        try
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1);
            fileLength = stream.Length;
            if (fileLength < 8)
                throw new SafetensorsException(path, null, $"the file is {fileLength} bytes long, shorter than the 8-byte header length field");
            Span<byte> lengthBytes = stackalloc byte[8];
            stream.ReadExactly(lengthBytes);
            ulong n = BinaryPrimitives.ReadUInt64LittleEndian(lengthBytes);
            if (n > MaxHeaderBytes)
                throw new SafetensorsException(path, null, $"header length {n} exceeds the limit of {MaxHeaderBytes} bytes (corrupt or not a safetensors file)");
            if (n + 8 > (ulong)fileLength)
                throw new SafetensorsException(path, null, $"header length {n} runs past the end of the {fileLength}-byte file (truncated?)");
            if (n < 2)
                throw new SafetensorsException(path, null, $"header length {n} is too short to hold a JSON object");
            headerLength = (long)n;
            header = new byte[headerLength];
            stream.ReadExactly(header);
        }
        catch (SafetensorsException) { throw; }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new SafetensorsException(path, null, $"cannot read the file: {e.Message}", e);
        }

        if (!System.Text.Unicode.Utf8.IsValid(header))
            throw new SafetensorsException(path, null, "the header is not valid UTF-8");
        if (header[0] != (byte)'{')
            throw new SafetensorsException(path, null, $"the header must start with '{{', found byte 0x{header[0]:X2}");

        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(header, new JsonDocumentOptions { AllowTrailingCommas = false, CommentHandling = JsonCommentHandling.Disallow });
        }
        catch (JsonException e)
        {
            throw new SafetensorsException(path, null, $"the header is not valid JSON: {e.Message}", e);
        }

        using (doc)
        {
            long dataLength = fileLength - 8 - headerLength;
            var tensors = new List<SafetensorsTensorInfo>();
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            var seen = new HashSet<string>(StringComparer.Ordinal);
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new SafetensorsException(path, null, $"the header must be a JSON object, found {doc.RootElement.ValueKind}");
            foreach (var prop in doc.RootElement.EnumerateObject())
            {
                if (!seen.Add(prop.Name))
                    throw new SafetensorsException(path, prop.Name, "the name appears twice in the header");
                if (prop.Name == MetadataKey) ReadMetadata(path, prop.Value, metadata);
                else tensors.Add(ReadTensorInfo(path, prop.Name, prop.Value, dataLength));
            }
            CheckCoverage(path, tensors, dataLength);
            return (fileLength, headerLength, tensors, metadata);
        }
    }

    private static void ReadMetadata(string path, JsonElement value, Dictionary<string, string> metadata)
    {
        if (value.ValueKind != JsonValueKind.Object)
            throw new SafetensorsException(path, MetadataKey, $"must be an object of strings, found {value.ValueKind}");
        foreach (var entry in value.EnumerateObject())
        {
            if (entry.Value.ValueKind != JsonValueKind.String)
                throw new SafetensorsException(path, MetadataKey, $"value of '{entry.Name}' must be a string, found {entry.Value.ValueKind}");
            if (!metadata.TryAdd(entry.Name, entry.Value.GetString()!))
                throw new SafetensorsException(path, MetadataKey, $"key '{entry.Name}' appears twice");
        }
    }

    private static SafetensorsTensorInfo ReadTensorInfo(string path, string name, JsonElement value, long dataLength)
    {
        if (name.Length == 0) throw new SafetensorsException(path, name, "empty tensor name");
        if (value.ValueKind != JsonValueKind.Object)
            throw new SafetensorsException(path, name, $"entry must be an object with dtype, shape and data_offsets, found {value.ValueKind}");
        string? dtypeText = null;
        long[]? shape = null, offsets = null;
        foreach (var field in value.EnumerateObject())
        {
            switch (field.Name)
            {
                case "dtype" when dtypeText == null:
                    if (field.Value.ValueKind != JsonValueKind.String)
                        throw new SafetensorsException(path, name, $"dtype must be a string, found {field.Value.ValueKind}");
                    dtypeText = field.Value.GetString()!;
                    break;
                case "shape" when shape == null:
                    shape = ReadIntegers(path, name, "shape", field.Value);
                    break;
                case "data_offsets" when offsets == null:
                    offsets = ReadIntegers(path, name, "data_offsets", field.Value);
                    break;
                case "dtype" or "shape" or "data_offsets":
                    throw new SafetensorsException(path, name, $"field '{field.Name}' appears twice");
                default:
                    throw new SafetensorsException(path, name, $"unexpected field '{field.Name}' (expected dtype, shape, data_offsets)");
            }
        }
        if (dtypeText == null) throw new SafetensorsException(path, name, "missing dtype");
        if (shape == null) throw new SafetensorsException(path, name, "missing shape");
        if (offsets == null) throw new SafetensorsException(path, name, "missing data_offsets");
        if (!SafetensorsDTypes.TryParse(dtypeText, out var dtype))
            throw new SafetensorsException(path, name, $"unknown dtype '{dtypeText}' (known: {SafetensorsDTypes.KnownNames})");
        if (offsets.Length != 2)
            throw new SafetensorsException(path, name, $"data_offsets must be [begin, end], found {offsets.Length} numbers");
        long begin = offsets[0], end = offsets[1];
        if (begin > end)
            throw new SafetensorsException(path, name, $"data_offsets [{begin}, {end}] end before they begin");
        if (end > dataLength)
            throw new SafetensorsException(path, name, $"data_offsets [{begin}, {end}] run past the end of the {dataLength}-byte data buffer (truncated file?)");
        long bytes;
        try
        {
            long count = 1;
            foreach (long d in shape) count = checked(count * d);
            bytes = checked(count * dtype.SizeInBytes());
        }
        catch (OverflowException)
        {
            throw new SafetensorsException(path, name, $"shape [{string.Join(", ", shape)}] is too large");
        }
        if (bytes != end - begin)
            throw new SafetensorsException(path, name,
                $"shape [{string.Join(", ", shape)}] of {dtype} needs {bytes} bytes but data_offsets [{begin}, {end}] hold {end - begin}");
        return new SafetensorsTensorInfo(name, dtype, shape, begin, end);
    }

    private static long[] ReadIntegers(string path, string name, string field, JsonElement value)
    {
        if (value.ValueKind != JsonValueKind.Array)
            throw new SafetensorsException(path, name, $"{field} must be an array of non-negative integers, found {value.ValueKind}");
        var result = new long[value.GetArrayLength()];
        int i = 0;
        foreach (var item in value.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.Number || !item.TryGetInt64(out long v) || v < 0)
                throw new SafetensorsException(path, name, $"{field}[{i}] = {item.GetRawText()} is not a non-negative 64-bit integer");
            result[i++] = v;
        }
        return result;
    }

    // The spec requires the tensors to tile the data buffer exactly: no overlap, no hole, nothing after.
    private static void CheckCoverage(string path, List<SafetensorsTensorInfo> tensors, long dataLength)
    {
        var sorted = tensors.OrderBy(t => t.Begin).ThenBy(t => t.End).ToList();
        long position = 0;
        SafetensorsTensorInfo? previous = null;
        foreach (var t in sorted)
        {
            if (t.Begin < position)
                throw new SafetensorsException(path, t.Name,
                    $"data_offsets [{t.Begin}, {t.End}] overlap those of '{previous!.Name}' [{previous.Begin}, {previous.End}]");
            if (t.Begin > position)
                throw new SafetensorsException(path, t.Name,
                    $"data_offsets [{t.Begin}, {t.End}] leave a hole of {t.Begin - position} bytes after byte {position} of the data buffer");
            position = t.End;
            previous = t;
        }
        if (position != dataLength)
            throw new SafetensorsException(path, null,
                $"the tensors cover {position} bytes but the data buffer holds {dataLength} (trailing bytes after the last tensor)");
    }

    // ---- data ------------------------------------------------------------------------------

    private byte* DataPointer(SafetensorsTensorInfo info)
    {
        if (info.Compressed != null) throw new InvalidOperationException($"{info.Name} is stored compressed; read it through CopyRaw");
        if (_base == null && info.ByteLength > 0) throw new ObjectDisposedException(FilePath);
        return _base + DataStart + info.Begin;
    }

    /// <summary>The raw little-endian bytes of a tensor (up to 2 GB; larger tensors go through the Read methods); a compressed one is decoded into a new array.</summary>
    public ReadOnlySpan<byte> GetBytes(string name)
    {
        var info = Get(name);
        if (info.ByteLength > int.MaxValue)
            throw new SafetensorsException(FilePath, name, $"{info.ByteLength} bytes do not fit one span; read it into a tensor instead");
        if (info.Compressed == null) return new ReadOnlySpan<byte>(DataPointer(info), (int)info.ByteLength);
        var bytes = new byte[info.ByteLength];
        CopyRaw(info, 0, bytes);
        return bytes;
    }

    /// <summary>Reads a whole float tensor (F32, BF16, F16 or F64) into <paramref name="dst"/> as F32; lengths must match.</summary>
    public void ReadFloat32(string name, Span<float> dst)
    {
        ExpectWhole(Get(name), dst.Length);
        ReadFloat32(name, 0, dst);
    }

    private void ExpectWhole(SafetensorsTensorInfo info, long length)
    {
        if (length != info.ElementCount)
            throw new SafetensorsException(FilePath, info.Name,
                $"destination holds {length} elements, the tensor [{string.Join(", ", info.Shape)}] has {info.ElementCount}");
    }

    /// <summary>Non-finite values of a float tensor (NaN, +-infinity), counted in chunks without holding it whole.</summary>
    public long CountNonFinite(string name)
    {
        var info = Get(name);
        const int Chunk = 1 << 20;
        var buffer = new float[Math.Min(Chunk, Math.Max(1, info.ElementCount))];
        long count = 0;
        for (long start = 0; start < info.ElementCount; start += Chunk)
        {
            int n = (int)Math.Min(Chunk, info.ElementCount - start);
            ReadFloat32(name, start, buffer.AsSpan(0, n));
            count += NonFinite.Count(buffer.AsSpan(0, n));
        }
        return count;
    }

    private SafetensorsException NonFiniteError(string name, long start, ReadOnlySpan<float> chunk)
    {
        long first = start + NonFinite.FirstIndex(chunk);
        long total = CountNonFinite(name);
        return new SafetensorsException(FilePath, name,
            $"{total} non-finite value{(total == 1 ? "" : "s")} (NaN or infinity), the first at flat index {first}; weights must be finite");
    }

    /// <summary>Elements [start, start + dst.Length) of a float tensor, converted to F32.</summary>
    public void ReadFloat32(string name, long start, Span<float> dst)
    {
        var info = Get(name);
        CheckRange(info, start, dst.Length);
        if (info.DType == SafetensorsDType.F32)
        {
            CopyRaw(info, start, MemoryMarshal.AsBytes(dst));
            return;
        }
        if (info.DType is not (SafetensorsDType.BF16 or SafetensorsDType.F16 or SafetensorsDType.F64))
            throw new SafetensorsException(FilePath, name, $"dtype {info.DType} is not a float type (expected F32, BF16, F16 or F64)");
        int size = info.DType.SizeInBytes();
        if (info.Compressed == null)
        {
            ConvertToFloat32(info.DType, new ReadOnlySpan<byte>(DataPointer(info) + start * size, dst.Length * size), dst);
            return;
        }
        const int Chunk = 1 << 16;
        var raw = ArrayPool<byte>.Shared.Rent(Math.Min(Chunk, dst.Length) * size);
        try
        {
            for (int done = 0; done < dst.Length; done += Chunk)
            {
                int n = Math.Min(Chunk, dst.Length - done);
                CopyRaw(info, start + done, raw.AsSpan(0, n * size));
                ConvertToFloat32(info.DType, raw.AsSpan(0, n * size), dst.Slice(done, n));
            }
        }
        finally { ArrayPool<byte>.Shared.Return(raw); }
    }

    private static void ConvertToFloat32(SafetensorsDType dtype, ReadOnlySpan<byte> src, Span<float> dst)
    {
        switch (dtype)
        {
            case SafetensorsDType.BF16:
                var bf = MemoryMarshal.Cast<byte, ushort>(src);
                for (int i = 0; i < dst.Length; i++) dst[i] = BitConverter.Int32BitsToSingle(bf[i] << 16);
                break;
            case SafetensorsDType.F16:
                var h = MemoryMarshal.Cast<byte, Half>(src);
                for (int i = 0; i < dst.Length; i++) dst[i] = (float)h[i];
                break;
            default:
                var d = MemoryMarshal.Cast<byte, double>(src);
                for (int i = 0; i < dst.Length; i++) dst[i] = (float)d[i];
                break;
        }
    }

    /// <summary>Reads a whole I32 tensor; lengths must match.</summary>
    public void ReadInt32(string name, Span<int> dst)
    {
        ExpectWhole(Get(name), dst.Length);
        ReadExact(name, SafetensorsDType.I32, 0, MemoryMarshalBytes(dst));
    }

    /// <summary>Reads a whole U8 or BOOL tensor; lengths must match.</summary>
    public void ReadUInt8(string name, Span<byte> dst)
    {
        var info = Get(name);
        ExpectWhole(info, dst.Length);
        if (info.DType is not (SafetensorsDType.U8 or SafetensorsDType.BOOL))
            throw new SafetensorsException(FilePath, name, $"dtype {info.DType} cannot be read as U8");
        CopyRaw(info, 0, dst);
    }

    private static Span<byte> MemoryMarshalBytes(Span<int> s) => MemoryMarshal.AsBytes(s);

    private void ReadExact(string name, SafetensorsDType expected, long start, Span<byte> dst)
    {
        var info = Get(name);
        if (info.DType != expected)
            throw new SafetensorsException(FilePath, name, $"dtype {info.DType}, expected {expected}");
        CopyRaw(info, start, dst);
    }

    private void CheckRange(SafetensorsTensorInfo info, long start, long count)
    {
        if (start < 0 || start + count > info.ElementCount)
            throw new SafetensorsException(FilePath, info.Name,
                $"asked for elements [{start}, {start + count}) of a tensor with {info.ElementCount} elements");
    }

    /// <summary>
    /// Reads a tensor into <paramref name="dst"/>, whose element count must equal the file's: F32
    /// destinations take any float type (BF16/F16/F64 are converted), I32 takes I32, U8 takes U8/BOOL.
    /// CPU tensors are filled in place; other backends get host chunks of at most 4 MB. Unless
    /// <paramref name="requireSameShape"/> is false the shapes must be equal too, so a [768, 3072]
    /// weight never loads silently into a [3072, 768] view.
    /// </summary>
    /// <param name="requireFinite">Refuse a float tensor holding NaN or an infinity (weights), naming it, the count and the first index.</param>
    public void ReadInto(string name, Tensor dst, bool requireSameShape = true, bool requireFinite = true)
    {
        ArgumentNullException.ThrowIfNull(dst);
        var info = Get(name);
        if (requireSameShape && !info.Shape.SequenceEqual(dst.Shape.ToArray().Select(d => (long)d)))
            throw new SafetensorsException(FilePath, name,
                $"shape [{string.Join(", ", info.Shape)}] in the file, [{string.Join(", ", dst.Shape.ToArray())}] expected");
        if (info.ElementCount != dst.Length)
            throw new SafetensorsException(FilePath, name,
                $"file holds {info.ElementCount} elements [{string.Join(", ", info.Shape)}], destination {dst} holds {dst.Length}");
        var wanted = info.DType.ToEngine();
        if (wanted != dst.DType)
            throw new SafetensorsException(FilePath, name, $"dtype {info.DType} cannot be loaded into a {dst.DType} tensor");

        const int Chunk = 1 << 20;
        bool onCpu = dst.Storage is CpuStorage;
        float[]? hostF32 = null;
        int[]? hostI32 = null;
        for (long start = 0; start < info.ElementCount; start += Chunk)
        {
            int n = (int)Math.Min(Chunk, info.ElementCount - start);
            Tensor part = dst.Slice(start, n);
            switch (dst.DType)
            {
                case DType.F32:
                    Span<float> values;
                    if (onCpu) ReadFloat32(name, start, values = new Span<float>(part.F32(), n));
                    else
                    {
                        hostF32 ??= new float[Math.Min(Chunk, info.ElementCount)];
                        ReadFloat32(name, start, values = hostF32.AsSpan(0, n));
                    }
                    if (requireFinite && NonFinite.Count(values) > 0) throw NonFiniteError(name, start, values);
                    if (!onCpu) dst.Backend.CopyFromHost<float>(values, part);
                    break;
                case DType.I32:
                    if (onCpu) ReadExact(name, SafetensorsDType.I32, start, new Span<byte>(part.I32(), n * 4));
                    else
                    {
                        hostI32 ??= new int[Math.Min(Chunk, info.ElementCount)];
                        ReadExact(name, SafetensorsDType.I32, start, MemoryMarshalBytes(hostI32.AsSpan(0, n)));
                        dst.Backend.CopyFromHost<int>(hostI32.AsSpan(0, n), part);
                    }
                    break;
                case DType.U8:
                    if (onCpu) CopyRaw(info, start, new Span<byte>(part.U8(), n));
                    else
                    {
                        var host = new byte[n];
                        CopyRaw(info, start, host);
                        dst.Backend.CopyFromHost<byte>(host, part);
                    }
                    break;
                default:
                    throw new SafetensorsException(FilePath, name, $"cannot load into a {dst.DType} tensor");
            }
        }
    }

    /// <summary>Allocates a tensor of the file's shape on <paramref name="backend"/> and reads it (see <see cref="ReadInto"/>).</summary>
    public Tensor Load(string name, IBackend backend)
    {
        var info = Get(name);
        var dtype = info.DType.ToEngine()
            ?? throw new SafetensorsException(FilePath, name, $"dtype {info.DType} has no engine equivalent (F32, BF16, F16, F64, I32, U8, BOOL load)");
        var shape = new int[info.Shape.Length];
        for (int i = 0; i < shape.Length; i++)
        {
            if (info.Shape[i] > int.MaxValue)
                throw new SafetensorsException(FilePath, name, $"dimension {i} = {info.Shape[i]} exceeds the engine's int dimensions");
            shape[i] = (int)info.Shape[i];
        }
        var t = backend.Allocate(dtype, shape);
        ReadInto(name, t);
        return t;
    }

    public void Dispose()
    {
        if (_view != null && _base != null)
        {
            _view.SafeMemoryMappedViewHandle.ReleasePointer();
            _base = null;
        }
        _view?.Dispose();
        _map?.Dispose();
    }
}
