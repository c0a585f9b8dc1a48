using System.Text.Json;
using NativeSparsity.Engine.IO;
using SharpToken;

namespace NativeSparsity.Models.Text;

/// <summary>
/// cl100k_base byte-level BPE (SharpToken, whose encodings are embedded, so it works offline) with a
/// compact vocabulary: the V - 5 most frequent cl100k ids of a corpus keep ids 5..V-1 (most frequent
/// first, ties to the lower cl100k id), every other cl100k id becomes [UNK], and ids 0..4 are
/// [PAD] [CLS] [SEP] [MASK] [UNK]. Saved as <see cref="FileName"/> beside a checkpoint.
/// </summary>
public sealed class CompactBpeTokenizer : ITokenizer
{
    public const string FileName = "vocab.compact-bpe.json";
    public const string FormatName = "nsparse-compact-bpe";
    public const string DefaultBaseEncoding = "cl100k_base";
    public const int DefaultVocabSize = 8192;
    public const int SpecialCount = 5;

    private static readonly HashSet<string> NoSpecials = new();

    private readonly GptEncoding _encoding;
    private readonly int[] _baseIds;          // compact id - 5 -> base id
    private readonly Dictionary<int, int> _toCompact;
    private readonly long[]? _counts;

    private CompactBpeTokenizer(string baseEncoding, int[] baseIds, long[]? counts)
    {
        BaseEncoding = baseEncoding;
        _encoding = GptEncoding.GetEncoding(baseEncoding);
        _baseIds = baseIds;
        _counts = counts;
        _toCompact = new Dictionary<int, int>(baseIds.Length);
        for (int i = 0; i < baseIds.Length; i++)
        {
            if (!_toCompact.TryAdd(baseIds[i], SpecialCount + i))
                throw new ArgumentException($"base id {baseIds[i]} appears twice in the compact vocabulary");
        }
        Fingerprint = Tokenizers.Fnv1a(new[] { FormatName, baseEncoding }.Concat(baseIds.Select(i => i.ToString())));
    }

    public string Kind => "compact-bpe";
    public string BaseEncoding { get; }
    public int VocabSize => SpecialCount + _baseIds.Length;
    public SpecialTokenIds Special { get; } = new(Pad: 0, Cls: 1, Sep: 2, Mask: 3, Unk: 4);
    public ulong Fingerprint { get; }

    /// <summary>cl100k id of a compact id, or -1 for the specials.</summary>
    public int BaseId(int id) => id >= SpecialCount && id < VocabSize ? _baseIds[id - SpecialCount] : -1;

    /// <summary>Corpus counts the vocabulary was chosen by (null if built from a list).</summary>
    public IReadOnlyList<long>? Counts => _counts;

    // ---- building ----------------------------------------------------------------------------

    /// <summary>Counts base-encoding ids over <paramref name="documents"/>; progress reports documents done.</summary>
    public static long[] CountBaseTokens(IEnumerable<string> documents, string baseEncoding = DefaultBaseEncoding, IProgress<long>? progress = null)
    {
        var encoding = GptEncoding.GetEncoding(baseEncoding);
        var counts = new long[1 << 17];
        var gate = new object();
        long done = 0;
        // Batches are encoded in parallel (the encoder is read-only) and counts are sums, so the
        // result does not depend on the thread count.
        foreach (var batch in documents.Chunk(2048))
        {
            Parallel.For(0, batch.Length, () => new Dictionary<int, long>(), (i, _, local) =>
            {
                foreach (int id in encoding.Encode(batch[i], NoSpecials, NoSpecials))
                    local[id] = local.GetValueOrDefault(id) + 1;
                return local;
            }, local =>
            {
                lock (gate)
                {
                    foreach (var (id, c) in local)
                    {
                        if (id >= counts.Length) Array.Resize(ref counts, Math.Max(counts.Length * 2, id + 1));
                        counts[id] += c;
                    }
                }
            });
            done += batch.Length;
            progress?.Report(done);
        }
        return counts;
    }

    /// <summary>Keeps the <paramref name="vocabSize"/> - 5 most frequent ids with a non-zero count.</summary>
    public static CompactBpeTokenizer FromCounts(long[] counts, int vocabSize = DefaultVocabSize, string baseEncoding = DefaultBaseEncoding)
    {
        ArgumentNullException.ThrowIfNull(counts);
        if (vocabSize <= SpecialCount)
            throw new ArgumentOutOfRangeException(nameof(vocabSize), vocabSize, $"vocabulary size must exceed the {SpecialCount} special tokens");
        var kept = Enumerable.Range(0, counts.Length)
            .Where(i => counts[i] > 0)
            .OrderByDescending(i => counts[i]).ThenBy(i => i)
            .Take(vocabSize - SpecialCount)
            .ToArray();
        return new CompactBpeTokenizer(baseEncoding, kept, kept.Select(i => counts[i]).ToArray());
    }

    public static CompactBpeTokenizer Build(IEnumerable<string> documents, int vocabSize = DefaultVocabSize,
                                            string baseEncoding = DefaultBaseEncoding, IProgress<long>? progress = null) =>
        FromCounts(CountBaseTokens(documents, baseEncoding, progress), vocabSize, baseEncoding);

    /// <summary>A tokenizer over an explicit list of base ids (compact id 5 + i is baseIds[i]).</summary>
    public static CompactBpeTokenizer FromBaseIds(IReadOnlyList<int> baseIds, string baseEncoding = DefaultBaseEncoding) =>
        new(baseEncoding, baseIds.ToArray(), null);

    // ---- encode / decode ---------------------------------------------------------------------

    public int[] Encode(string text)
    {
        var ids = new List<int>();
        Encode(text, ids);
        return ids.ToArray();
    }

    public void Encode(string text, List<int> output)
    {
        ArgumentNullException.ThrowIfNull(text);
        bool endsWithLoneSpace = false;
        foreach (var (plain, special) in Tokenizers.SplitSpecials(text, Special))
        {
            if (plain != null)
            {
                foreach (int baseId in _encoding.Encode(plain, NoSpecials, NoSpecials))
                    output.Add(_toCompact.TryGetValue(baseId, out int id) ? id : Special.Unk);
                endsWithLoneSpace = plain.Length >= 1 && plain[^1] == ' ' && (plain.Length == 1 || plain[^2] != ' ');
                continue;
            }
            // "is [MASK]": the space belongs to the masked word (" Paris" is one token), so drop the
            // lone space token that the text before a special token would otherwise end with.
            if (endsWithLoneSpace && output.Count > 0) output.RemoveAt(output.Count - 1);
            endsWithLoneSpace = false;
            output.Add(special);
        }
    }

    public string Decode(ReadOnlySpan<int> ids, bool skipSpecial = false)
    {
        var sb = new System.Text.StringBuilder();
        var run = new List<int>();
        foreach (int id in ids)
        {
            if (id < 0 || id >= VocabSize) throw new ArgumentOutOfRangeException(nameof(ids), id, $"id outside [0, {VocabSize})");
            if (id >= SpecialCount) { run.Add(_baseIds[id - SpecialCount]); continue; }
            if (run.Count > 0) { sb.Append(_encoding.Decode(run)); run.Clear(); }
            if (!skipSpecial) sb.Append(SpecialTokenIds.Texts[id]);
        }
        if (run.Count > 0) sb.Append(_encoding.Decode(run));
        return sb.ToString();
    }

    public string TokenText(int id)
    {
        if (id < 0 || id >= VocabSize) throw new ArgumentOutOfRangeException(nameof(id), id, $"id outside [0, {VocabSize})");
        return id < SpecialCount ? SpecialTokenIds.Texts[id] : _encoding.Decode(new List<int> { _baseIds[id - SpecialCount] });
    }

    // ---- files -------------------------------------------------------------------------------

    public void Save(string folder)
    {
        Directory.CreateDirectory(folder);
        AtomicFile.Write(Path.Combine(folder, FileName), stream =>
        {
            using var json = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true });
            json.WriteStartObject();
            json.WriteString("format", FormatName);
            json.WriteNumber("version", 1);
            json.WriteString("base_encoding", BaseEncoding);
            json.WriteNumber("vocab_size", VocabSize);
            json.WriteStartArray("special_tokens");
            foreach (string s in SpecialTokenIds.Texts) json.WriteStringValue(s);
            json.WriteEndArray();
            json.WriteStartArray("base_ids");
            foreach (int id in _baseIds) json.WriteNumberValue(id);
            json.WriteEndArray();
            if (_counts != null)
            {
                json.WriteStartArray("counts");
                foreach (long c in _counts) json.WriteNumberValue(c);
                json.WriteEndArray();
            }
            json.WriteEndObject();
        });
    }

    public static CompactBpeTokenizer Load(string folder)
    {
        string path = Path.Combine(folder, FileName);
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
            var root = doc.RootElement;
            string format = root.GetProperty("format").GetString() ?? "";
            if (format != FormatName) throw new InvalidDataException($"format is '{format}', expected '{FormatName}'");
            int version = root.GetProperty("version").GetInt32();
            if (version != 1) throw new InvalidDataException($"version {version} is not supported (expected 1)");
            var specials = root.GetProperty("special_tokens").EnumerateArray().Select(e => e.GetString()).ToArray();
            if (!specials.SequenceEqual(SpecialTokenIds.Texts))
                throw new InvalidDataException($"special_tokens [{string.Join(", ", specials)}], expected [{string.Join(", ", SpecialTokenIds.Texts)}]");
            int[] baseIds = root.GetProperty("base_ids").EnumerateArray().Select(e => e.GetInt32()).ToArray();
            long[]? counts = root.TryGetProperty("counts", out var c) ? c.EnumerateArray().Select(e => e.GetInt64()).ToArray() : null;
            if (counts != null && counts.Length != baseIds.Length)
                throw new InvalidDataException($"counts has {counts.Length} entries, base_ids {baseIds.Length}");
            var tok = new CompactBpeTokenizer(root.GetProperty("base_encoding").GetString()!, baseIds, counts);
            if (root.TryGetProperty("vocab_size", out var vs) && vs.GetInt32() != tok.VocabSize)
                throw new InvalidDataException($"vocab_size {vs.GetInt32()} disagrees with {baseIds.Length} base ids + {SpecialCount} specials");
            return tok;
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or InvalidDataException
                                      or FormatException or ArgumentException)
        {
            throw new InvalidDataException($"compact BPE vocabulary '{path}': {e.Message}", e);
        }
    }
}
