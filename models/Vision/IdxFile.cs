using System.Buffers.Binary;
using System.IO.Compression;

namespace NativeSparsity.Models.Vision;

/// <summary>Element type of an IDX file (the third byte of its magic number).</summary>
public enum IdxDataType : byte
{
    UByte = 0x08,
    SByte = 0x09,
    Int16 = 0x0B,
    Int32 = 0x0C,
    Float32 = 0x0D,
    Float64 = 0x0E,
}

/// <summary>
/// An IDX file (LeCun's MNIST format): magic <c>00 00 type rank</c>, then <c>rank</c> big-endian
/// int32 dimensions, then exactly prod(dims) big-endian elements. Files may be gzip-compressed;
/// compression is detected from the content (gzip magic 1f 8b), never from the name. Every
/// deviation (magic, type, dimension, truncation, trailing bytes) is an <see cref="InvalidDataException"/>
/// naming the file and what was expected.
/// </summary>
public sealed class IdxFile
{
    /// <summary>Where the data came from (a path, or a name given to <see cref="Parse"/>), used in error messages.</summary>
    public string Source { get; }

    /// <summary>Element type.</summary>
    public IdxDataType Type { get; }

    /// <summary>Dimensions, outermost first (e.g. [60000, 28, 28] for an image file).</summary>
    public int[] Shape { get; }

    /// <summary>The elements as stored: one byte each for (s)bytes, big-endian words otherwise.</summary>
    public byte[] Data { get; }

    /// <summary>Number of elements, the product of <see cref="Shape"/>.</summary>
    public long ElementCount => Data.LongLength / ElementSize(Type);

    private IdxFile(string source, IdxDataType type, int[] shape, byte[] data)
    {
        Source = source; Type = type; Shape = shape; Data = data;
    }

    /// <summary>Bytes per element of <paramref name="type"/>.</summary>
    public static int ElementSize(IdxDataType type) => type switch
    {
        IdxDataType.UByte or IdxDataType.SByte => 1,
        IdxDataType.Int16 => 2,
        IdxDataType.Int32 or IdxDataType.Float32 => 4,
        IdxDataType.Float64 => 8,
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "not an IDX element type"),
    };

    /// <summary>Reads and validates the IDX file at <paramref name="path"/> (raw or gzip).</summary>
    public static IdxFile Read(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"IDX file '{path}' does not exist", path);
        return Parse(File.ReadAllBytes(path), path);
    }

    /// <summary>Parses and validates IDX content (raw or gzip); <paramref name="source"/> names it in errors.</summary>
    public static IdxFile Parse(byte[] content, string source)
    {
        ArgumentNullException.ThrowIfNull(content);
        byte[] raw = content.Length >= 2 && content[0] == 0x1F && content[1] == 0x8B ? Gunzip(content, source) : content;
        string what = ReferenceEquals(raw, content) ? source : $"{source} (gzip, {raw.LongLength} bytes decompressed)";

        if (raw.Length < 4)
            throw Bad(what, $"expected a 4-byte magic number, found only {raw.Length} bytes");
        if (raw[0] != 0 || raw[1] != 0)
            throw Bad(what, $"expected magic bytes 00 00 <type> <rank>, found {raw[0]:X2} {raw[1]:X2} {raw[2]:X2} {raw[3]:X2}");
        var type = (IdxDataType)raw[2];
        if (!Enum.IsDefined(type))
            throw Bad(what, $"expected element type 0x08 (ubyte), 0x09, 0x0B, 0x0C, 0x0D or 0x0E, found 0x{raw[2]:X2}");
        int rank = raw[3];
        if (rank == 0) throw Bad(what, "expected at least one dimension, found rank 0");
        long headerBytes = 4 + 4L * rank;
        if (raw.Length < headerBytes)
            throw Bad(what, $"expected a {headerBytes}-byte header for {rank} dimensions, found only {raw.Length} bytes");

        var shape = new int[rank];
        long elements = 1;
        for (int d = 0; d < rank; d++)
        {
            int dim = BinaryPrimitives.ReadInt32BigEndian(raw.AsSpan(4 + 4 * d, 4));
            if (dim <= 0) throw Bad(what, $"expected dimension {d} > 0, found {dim}");
            shape[d] = dim;
            elements *= dim;
            if (elements > Array.MaxLength) throw Bad(what, $"expected at most {Array.MaxLength} elements, the dimensions give more");
        }
        int size = ElementSize(type);
        long expected = elements * size, found = raw.Length - headerBytes;
        if (found != expected)
            throw Bad(what, $"expected {expected} data bytes for shape [{string.Join(", ", shape)}] of {type}, found {found}"
                          + (found < expected ? " (truncated)" : " (trailing bytes)"));
        return new IdxFile(source, type, shape, raw.AsSpan((int)headerBytes).ToArray());
    }

    /// <summary>The elements as bytes; only for <see cref="IdxDataType.UByte"/> files.</summary>
    public byte[] AsBytes()
    {
        if (Type != IdxDataType.UByte)
            throw new InvalidDataException($"IDX file '{Source}': expected element type ubyte (0x08), found {Type}");
        return Data;
    }

    /// <summary>The elements converted to double, for any element type.</summary>
    public double[] ToDoubles()
    {
        int size = ElementSize(Type);
        var result = new double[Data.Length / size];
        ReadOnlySpan<byte> d = Data;
        for (int i = 0; i < result.Length; i++)
        {
            var e = d.Slice(i * size, size);
            result[i] = Type switch
            {
                IdxDataType.UByte => e[0],
                IdxDataType.SByte => (sbyte)e[0],
                IdxDataType.Int16 => BinaryPrimitives.ReadInt16BigEndian(e),
                IdxDataType.Int32 => BinaryPrimitives.ReadInt32BigEndian(e),
                IdxDataType.Float32 => BinaryPrimitives.ReadSingleBigEndian(e),
                _ => BinaryPrimitives.ReadDoubleBigEndian(e),
            };
        }
        return result;
    }

    /// <summary>
    /// Encodes an IDX file: header for <paramref name="shape"/> then <paramref name="data"/> as given
    /// (big-endian elements); gzip-compressed when <paramref name="gzip"/>. Used to build test files.
    /// </summary>
    public static byte[] Encode(IdxDataType type, ReadOnlySpan<int> shape, ReadOnlySpan<byte> data, bool gzip = false)
    {
        if (shape.Length is 0 or > 255) throw new ArgumentException($"IDX rank must be 1..255, got {shape.Length}", nameof(shape));
        var ms = new MemoryStream();
        ms.Write([0, 0, (byte)type, (byte)shape.Length]);
        Span<byte> word = stackalloc byte[4];
        foreach (int dim in shape)
        {
            BinaryPrimitives.WriteInt32BigEndian(word, dim);
            ms.Write(word);
        }
        ms.Write(data);
        if (!gzip) return ms.ToArray();
        var zipped = new MemoryStream();
        using (var gz = new GZipStream(zipped, CompressionLevel.Fastest, leaveOpen: true)) gz.Write(ms.GetBuffer(), 0, (int)ms.Length);
        return zipped.ToArray();
    }

    private static byte[] Gunzip(byte[] content, string source)
    {
        try
        {
            using var gz = new GZipStream(new MemoryStream(content), CompressionMode.Decompress);
            // The gzip trailer's last word is the uncompressed size mod 2^32: a capacity hint only.
            uint hint = content.Length >= 18 ? BinaryPrimitives.ReadUInt32LittleEndian(content.AsSpan(content.Length - 4)) : 0;
            var output = new MemoryStream((int)Math.Min(hint, 1u << 30));
            gz.CopyTo(output);
            return output.ToArray();
        }
        catch (Exception e) when (e is InvalidDataException or IOException)
        {
            throw Bad(source, $"starts with the gzip magic 1f 8b but is not valid gzip ({e.Message})");
        }
    }

    private static InvalidDataException Bad(string source, string message) => new($"IDX file '{source}': {message}");
}
