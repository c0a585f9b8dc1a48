using System.Text.Json;
using NativeSparsity.Engine.IO;
using NativeSparsity.Models.Text;

namespace NativeSparsity.Models.Data.Corpus;

/// <summary>Options of a shard build.</summary>
public sealed record ShardBuildOptions
{
    /// <summary>Keep this fraction of the source's documents (see <see cref="DataFraction"/>).</summary>
    public double Fraction { get; init; } = 1.0;
    public ulong Seed { get; init; }

    /// <summary>A shard is closed once it holds at least this many tokens (documents are never split).</summary>
    public long TokensPerShard { get; init; } = 1L << 26;
}

/// <summary>What a shard build has done so far; SourceProgress is the source's own [0, 1] estimate.</summary>
public readonly record struct ShardBuildProgress(long DocumentsSeen, long DocumentsKept, long Tokens, int Shards, double? SourceProgress);

/// <summary>
/// A tokenized corpus: a folder of token shards (shard-00000.bin, ...) and a manifest corpus.json.
/// <see cref="Build"/> tokenizes a document source once and publishes the folder atomically;
/// <see cref="Open"/> maps the shards for training, which reads tokens, never text.
/// </summary>
public sealed class TokenCorpus : IDisposable
{
    public const string ManifestName = "corpus.json";
    public const string FormatName = "nsparse-token-shards";

    private readonly TokenShard[] _shards;
    private readonly long[] _tokenStarts;   // global index of each shard's first token, plus the total
    private readonly long[] _documentStarts;

    private TokenCorpus(string folder, TokenShard[] shards, JsonElement manifest)
    {
        Folder = folder;
        _shards = shards;
        _tokenStarts = new long[shards.Length + 1];
        _documentStarts = new long[shards.Length + 1];
        for (int i = 0; i < shards.Length; i++)
        {
            _tokenStarts[i + 1] = _tokenStarts[i] + shards[i].TokenCount;
            _documentStarts[i + 1] = _documentStarts[i] + shards[i].DocumentCount;
        }
        VocabSize = manifest.GetProperty("vocab_size").GetInt32();
        Fingerprint = Convert.ToUInt64(manifest.GetProperty("tokenizer_fingerprint").GetString(), 16);
        Fraction = manifest.GetProperty("fraction").GetDouble();
        Seed = manifest.GetProperty("seed").GetUInt64();
        DocumentsSeen = manifest.GetProperty("documents_seen").GetInt64();
        Source = manifest.GetProperty("source").GetString() ?? "";
    }

    public string Folder { get; }
    public IReadOnlyList<TokenShard> Shards => _shards;
    public int VocabSize { get; }
    public ulong Fingerprint { get; }
    public double Fraction { get; }
    public ulong Seed { get; }
    public string Source { get; }

    /// <summary>Documents the source offered (before the fraction).</summary>
    public long DocumentsSeen { get; }
    public long TokenCount => _tokenStarts[^1];
    public long DocumentCount => _documentStarts[^1];

    // ---- building ----------------------------------------------------------------------------

    public static TokenCorpus Build(IDocumentSource source, ITokenizer tokenizer, string folder,
                                    ShardBuildOptions? options = null, IProgress<ShardBuildProgress>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(tokenizer);
        options ??= new ShardBuildOptions();
        DataFraction.Check(options.Fraction);
        if (options.TokensPerShard <= 0)
            throw new ArgumentOutOfRangeException(nameof(options), options.TokensPerShard, "TokensPerShard must be positive");

        AtomicFolder.Write(folder, temp =>
        {
            var shards = new List<(string File, long Documents, long Tokens)>();
            long seen = 0, kept = 0, tokens = 0;
            TokenShardWriter? writer = null;
            void Close()
            {
                if (writer == null) return;
                writer.Finish();
                shards.Add((Path.GetFileName(writer.Path), writer.DocumentCount, writer.TokenCount));
                writer.Dispose();
                writer = null;
            }
            void Report() => progress?.Report(new ShardBuildProgress(seen, kept, tokens, shards.Count + (writer != null ? 1 : 0), source.Progress));

            void Write(List<string> batch)
            {
                foreach (int[] ids in Tokenizers.EncodeBatch(tokenizer, batch))
                {
                    if (ids.Length == 0) continue;
                    writer ??= new TokenShardWriter(Path.Combine(temp, $"shard-{shards.Count:D5}.bin"), tokenizer.VocabSize, tokenizer.Fingerprint);
                    writer.AddDocument(ids);
                    kept++;
                    tokens += ids.Length;
                    if (writer.TokenCount >= options.TokensPerShard) Close();
                }
                batch.Clear();
            }

            try
            {
                // Documents are tokenized in parallel batches and written in source order.
                var batch = new List<string>();
                long batchChars = 0;
                foreach (string doc in source.Documents())
                {
                    long index = seen++;
                    if (DataFraction.Keep(index, options.Fraction, options.Seed))
                    {
                        batch.Add(doc);
                        batchChars += doc.Length;
                        if (batch.Count >= 4096 || batchChars >= 1 << 24) { Write(batch); batchChars = 0; }
                    }
                    if (seen % 4096 == 0) Report();
                }
                Write(batch);
                Close();
            }
            finally { writer?.Dispose(); }
            Report();
            WriteManifest(Path.Combine(temp, ManifestName), source, tokenizer, options, seen, kept, tokens, shards);
        });
        return Open(folder, tokenizer);
    }

    private static void WriteManifest(string path, IDocumentSource source, ITokenizer tokenizer, ShardBuildOptions options,
                                      long seen, long kept, long tokens, List<(string File, long Documents, long Tokens)> shards)
    {
        using var stream = File.Create(path);
        using var json = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true });
        json.WriteStartObject();
        json.WriteString("format", FormatName);
        json.WriteNumber("version", 1);
        json.WriteString("source", source.Description);
        json.WriteString("tokenizer", tokenizer.Kind);
        json.WriteString("tokenizer_fingerprint", tokenizer.Fingerprint.ToString("x16"));
        json.WriteNumber("vocab_size", tokenizer.VocabSize);
        json.WriteNumber("fraction", options.Fraction);
        json.WriteNumber("seed", options.Seed);
        json.WriteNumber("documents_seen", seen);
        json.WriteNumber("documents", kept);
        json.WriteNumber("tokens", tokens);
        json.WriteStartArray("shards");
        foreach (var (file, documents, count) in shards)
        {
            json.WriteStartObject();
            json.WriteString("file", file);
            json.WriteNumber("documents", documents);
            json.WriteNumber("tokens", count);
            json.WriteEndObject();
        }
        json.WriteEndArray();
        json.WriteEndObject();
    }

    // ---- reading -----------------------------------------------------------------------------

    /// <summary>Opens a built corpus; with a tokenizer given, its fingerprint and size must match the shards'.</summary>
    public static TokenCorpus Open(string folder, ITokenizer? tokenizer = null)
    {
        string manifestPath = Path.Combine(folder, ManifestName);
        if (!File.Exists(manifestPath)) throw new FileNotFoundException($"no {ManifestName} in '{folder}': not a token corpus (build it first)", manifestPath);
        using var doc = JsonDocument.Parse(File.ReadAllBytes(manifestPath));
        var root = doc.RootElement;
        var shards = new List<TokenShard>();
        try
        {
            if (root.GetProperty("format").GetString() != FormatName || root.GetProperty("version").GetInt32() != 1)
                throw new InvalidDataException($"'{manifestPath}' is not a version-1 {FormatName} manifest");
            long tokens = 0, documents = 0;
            foreach (var entry in root.GetProperty("shards").EnumerateArray())
            {
                var shard = TokenShard.Open(Path.Combine(folder, entry.GetProperty("file").GetString()!));
                shards.Add(shard);
                if (shard.TokenCount != entry.GetProperty("tokens").GetInt64() || shard.DocumentCount != entry.GetProperty("documents").GetInt64())
                    throw new InvalidDataException($"'{shard.FilePath}' holds {shard.TokenCount} tokens in {shard.DocumentCount} documents, the manifest says otherwise");
                tokens += shard.TokenCount;
                documents += shard.DocumentCount;
            }
            if (tokens != root.GetProperty("tokens").GetInt64() || documents != root.GetProperty("documents").GetInt64())
                throw new InvalidDataException($"'{manifestPath}': shard totals ({tokens} tokens, {documents} documents) disagree with the manifest");
            var corpus = new TokenCorpus(Path.GetFullPath(folder), shards.ToArray(), root.Clone());
            foreach (var s in shards)
                if (s.Fingerprint != corpus.Fingerprint || s.VocabSize != corpus.VocabSize)
                    throw new InvalidDataException($"'{s.FilePath}' was tokenized with another tokenizer than its manifest names");
            if (tokenizer != null && (tokenizer.Fingerprint != corpus.Fingerprint || tokenizer.VocabSize != corpus.VocabSize))
                throw new InvalidDataException(
                    $"corpus '{folder}' was tokenized with a different vocabulary (fingerprint {corpus.Fingerprint:x16}, {corpus.VocabSize} ids) " +
                    $"than the tokenizer given ({tokenizer.Fingerprint:x16}, {tokenizer.VocabSize} ids); rebuild it");
            return corpus;
        }
        catch
        {
            foreach (var s in shards) s.Dispose();
            throw;
        }
    }

    /// <summary>Copies tokens [start, start + dst.Length) of the whole corpus, across shard boundaries.</summary>
    public void CopyTokens(long start, Span<int> dst)
    {
        if (start < 0 || start + dst.Length > TokenCount)
            throw new ArgumentOutOfRangeException(nameof(start), $"tokens [{start}, {start + dst.Length}) outside [0, {TokenCount})");
        int shard = ShardOf(start);
        while (dst.Length > 0)
        {
            long local = start - _tokenStarts[shard];
            int n = (int)Math.Min(dst.Length, _shards[shard].TokenCount - local);
            _shards[shard].Tokens(local, n).CopyTo(dst);
            dst = dst[n..];
            start += n;
            shard++;
        }
    }

    /// <summary>Global token index where global document <paramref name="d"/> starts (d = DocumentCount gives TokenCount).</summary>
    public long DocumentStart(long d)
    {
        if (d < 0 || d > DocumentCount) throw new ArgumentOutOfRangeException(nameof(d), d, $"document outside [0, {DocumentCount}]");
        if (d == DocumentCount) return TokenCount;
        int s = Array.BinarySearch(_documentStarts, 0, _shards.Length, d);
        if (s < 0) s = ~s - 1;
        while (s + 1 < _shards.Length && _documentStarts[s + 1] <= d) s++;
        return _tokenStarts[s] + _shards[s].DocumentStart(d - _documentStarts[s]);
    }

    /// <summary>The global document that contains global token <paramref name="token"/>.</summary>
    public long DocumentOf(long token)
    {
        int s = ShardOf(token);
        return _documentStarts[s] + _shards[s].DocumentOf(token - _tokenStarts[s]);
    }

    private int ShardOf(long token)
    {
        if (token < 0 || token >= TokenCount) throw new ArgumentOutOfRangeException(nameof(token), token, $"token outside [0, {TokenCount})");
        int i = Array.BinarySearch(_tokenStarts, token);
        if (i < 0) i = ~i - 1;
        while (_shards[i].TokenCount == 0 || token >= _tokenStarts[i + 1]) i++;
        return i;
    }

    public void Dispose()
    {
        foreach (var s in _shards) s.Dispose();
    }
}
