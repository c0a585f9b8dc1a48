using System.Buffers.Binary;
using System.IO.MemoryMappedFiles;
using System.Numerics.Tensors;
using System.Runtime.InteropServices;

namespace NativeSparsity.Models.Data.Corpus;

/// <summary>
/// One tokenized shard file, little-endian:
/// <code>
///  0  8  magic "NSTOKENS"
///  8  4  uint32 version (1)
/// 12  4  uint32 header size in bytes (64)
/// 16  4  int32  vocabulary size (every token id is in [0, vocab))
/// 20  4  zero
/// 24  8  uint64 tokenizer fingerprint
/// 32  8  int64  token count T
/// 40  8  int64  document count D
/// 48 16  zero
/// 64     int32  tokens[T]
///        int64  document starts[D + 1]: document d is tokens [starts[d], starts[d+1]); starts[0] = 0, starts[D] = T
/// </code>
/// Opened memory-mapped and validated (sizes, boundaries, every id in range) so training never
/// meets a bad id; nothing is copied into managed arrays.
/// </summary>
public sealed unsafe class TokenShard : IDisposable
{
    public static ReadOnlySpan<byte> Magic => "NSTOKENS"u8;
    public const uint Version = 1;
    public const int HeaderBytes = 64;

    private readonly MemoryMappedFile _map;
    private readonly MemoryMappedViewAccessor _view;
    private byte* _base;

    private TokenShard(string path, MemoryMappedFile map, MemoryMappedViewAccessor view, byte* p)
    {
        FilePath = path;
        _map = map;
        _view = view;
        _base = p;
        VocabSize = BinaryPrimitives.ReadInt32LittleEndian(new ReadOnlySpan<byte>(p + 16, 4));
        Fingerprint = BinaryPrimitives.ReadUInt64LittleEndian(new ReadOnlySpan<byte>(p + 24, 8));
        TokenCount = BinaryPrimitives.ReadInt64LittleEndian(new ReadOnlySpan<byte>(p + 32, 8));
        DocumentCount = BinaryPrimitives.ReadInt64LittleEndian(new ReadOnlySpan<byte>(p + 40, 8));
    }

    public string FilePath { get; }
    public int VocabSize { get; }
    public ulong Fingerprint { get; }
    public long TokenCount { get; }
    public long DocumentCount { get; }

    private int* TokenPointer => (int*)(_base + HeaderBytes);
    private long* StartsPointer => (long*)(_base + HeaderBytes + 4 * TokenCount);

    public static TokenShard Open(string path)
    {
        long length = new FileInfo(path).Length;
        if (length < HeaderBytes + 8) throw Bad(path, $"{length} bytes is shorter than the {HeaderBytes}-byte header plus one document start");
        var map = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
        var view = map.CreateViewAccessor(0, length, MemoryMappedFileAccess.Read);
        byte* p = null;
        view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
        p += view.PointerOffset;
        TokenShard? shard = null;
        try
        {
            var header = new ReadOnlySpan<byte>(p, HeaderBytes);
            if (!header[..8].SequenceEqual(Magic)) throw Bad(path, "not a token shard (bad magic)");
            uint version = BinaryPrimitives.ReadUInt32LittleEndian(header[8..]);
            if (version != Version) throw Bad(path, $"version {version}, this program reads version {Version}");
            uint headerBytes = BinaryPrimitives.ReadUInt32LittleEndian(header[12..]);
            if (headerBytes != HeaderBytes) throw Bad(path, $"header size {headerBytes}, expected {HeaderBytes}");
            shard = new TokenShard(path, map, view, p);
            shard.Validate(length);
            return shard;
        }
        catch
        {
            if (shard != null) shard.Dispose();
            else
            {
                view.SafeMemoryMappedViewHandle.ReleasePointer();
                view.Dispose();
                map.Dispose();
            }
            throw;
        }
    }

    private void Validate(long length)
    {
        if (VocabSize <= 0) throw Bad(FilePath, $"vocabulary size {VocabSize}");
        if (TokenCount < 0 || DocumentCount < 0) throw Bad(FilePath, $"negative counts (tokens {TokenCount}, documents {DocumentCount})");
        long expected = HeaderBytes + 4 * TokenCount + 8 * (DocumentCount + 1);
        if (TokenCount > (long.MaxValue - HeaderBytes) / 8 || expected != length)
            throw Bad(FilePath, $"{TokenCount} tokens and {DocumentCount} documents need {expected} bytes, the file has {length} (truncated?)");
        long* starts = StartsPointer;
        if (starts[0] != 0 || starts[DocumentCount] != TokenCount)
            throw Bad(FilePath, $"document starts run from {starts[0]} to {starts[DocumentCount]}, expected 0 to {TokenCount}");
        for (long d = 0; d < DocumentCount; d++)
            if (starts[d + 1] < starts[d]) throw Bad(FilePath, $"document {d} ends at {starts[d + 1]} before it starts at {starts[d]}");
        const int Chunk = 1 << 28;
        for (long s = 0; s < TokenCount; s += Chunk)
        {
            var span = new ReadOnlySpan<int>(TokenPointer + s, (int)Math.Min(Chunk, TokenCount - s));
            int min = TensorPrimitives.Min(span), max = TensorPrimitives.Max(span);
            if (min < 0 || max >= VocabSize)
                throw Bad(FilePath, $"token ids span [{min}, {max}], outside the vocabulary [0, {VocabSize})");
        }
    }

    private static InvalidDataException Bad(string path, string problem) => new($"token shard '{path}': {problem}");

    /// <summary>Tokens [start, start + count).</summary>
    public ReadOnlySpan<int> Tokens(long start, int count)
    {
        if (start < 0 || count < 0 || start + count > TokenCount)
            throw new ArgumentOutOfRangeException(nameof(start), $"tokens [{start}, {start + count}) outside [0, {TokenCount}) of {FilePath}");
        return new ReadOnlySpan<int>(TokenPointer + start, count);
    }

    /// <summary>First token of document <paramref name="d"/>; d = DocumentCount gives TokenCount.</summary>
    public long DocumentStart(long d)
    {
        if (d < 0 || d > DocumentCount) throw new ArgumentOutOfRangeException(nameof(d), d, $"document outside [0, {DocumentCount}] of {FilePath}");
        return StartsPointer[d];
    }

    public ReadOnlySpan<int> Document(long d)
    {
        long s = DocumentStart(d), e = DocumentStart(d + 1);
        return Tokens(s, checked((int)(e - s)));
    }

    /// <summary>The document that contains token <paramref name="token"/> (binary search).</summary>
    public long DocumentOf(long token)
    {
        if (token < 0 || token >= TokenCount) throw new ArgumentOutOfRangeException(nameof(token), token, $"token outside [0, {TokenCount}) of {FilePath}");
        long lo = 0, hi = DocumentCount - 1;
        while (lo < hi)
        {
            long mid = (lo + hi + 1) >> 1;
            if (StartsPointer[mid] <= token) lo = mid; else hi = mid - 1;
        }
        return lo;
    }

    public void Dispose()
    {
        if (_base == null) return;
        _base = null;
        _view.SafeMemoryMappedViewHandle.ReleasePointer();
        _view.Dispose();
        _map.Dispose();
    }
}

/// <summary>Writes one shard file (the caller makes the folder atomic).</summary>
internal sealed class TokenShardWriter : IDisposable
{
    private readonly FileStream _stream;
    private readonly List<long> _starts = new() { 0 };
    private readonly int _vocabSize;
    private readonly ulong _fingerprint;

    public TokenShardWriter(string path, int vocabSize, ulong fingerprint)
    {
        Path = path;
        _vocabSize = vocabSize;
        _fingerprint = fingerprint;
        _stream = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20);
        _stream.Write(new byte[TokenShard.HeaderBytes]);
    }

    public string Path { get; }
    public long TokenCount { get; private set; }
    public long DocumentCount => _starts.Count - 1;

    public void AddDocument(ReadOnlySpan<int> ids)
    {
        foreach (int id in ids)
            if ((uint)id >= (uint)_vocabSize) throw new ArgumentOutOfRangeException(nameof(ids), id, $"token id outside [0, {_vocabSize})");
        _stream.Write(MemoryMarshal.AsBytes(ids));
        TokenCount += ids.Length;
        _starts.Add(TokenCount);
    }

    public void Finish()
    {
        _stream.Write(MemoryMarshal.AsBytes(CollectionsMarshal.AsSpan(_starts)));
        Span<byte> header = stackalloc byte[TokenShard.HeaderBytes];
        header.Clear();
        TokenShard.Magic.CopyTo(header);
        BinaryPrimitives.WriteUInt32LittleEndian(header[8..], TokenShard.Version);
        BinaryPrimitives.WriteUInt32LittleEndian(header[12..], TokenShard.HeaderBytes);
        BinaryPrimitives.WriteInt32LittleEndian(header[16..], _vocabSize);
        BinaryPrimitives.WriteUInt64LittleEndian(header[24..], _fingerprint);
        BinaryPrimitives.WriteInt64LittleEndian(header[32..], TokenCount);
        BinaryPrimitives.WriteInt64LittleEndian(header[40..], DocumentCount);
        _stream.Seek(0, SeekOrigin.Begin);
        _stream.Write(header);
        _stream.Flush(flushToDisk: true);
    }

    public void Dispose() => _stream.Dispose();
}
