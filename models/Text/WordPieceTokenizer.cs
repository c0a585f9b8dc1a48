using System.Text;
using System.Text.Json;
using FastBertTokenizer;
using NativeSparsity.Engine.IO;

namespace NativeSparsity.Models.Text;

/// <summary>
/// BERT WordPiece over a Hugging Face vocab.txt (id = line number), tokenized by FastBertTokenizer;
/// lower-casing and accent stripping as bert-base-uncased (see <see cref="AccentFolding"/>) unless the folder's tokenizer_config.json
/// says "do_lower_case": false.
/// </summary>
public sealed class WordPieceTokenizer : ITokenizer
{
    public const string FileName = "vocab.txt";

    private readonly BertTokenizer _inner = new();
    private readonly string[] _vocab;
    private long[] _buffer = new long[1024];
    private long[] _mask = new long[1024];
    private readonly object _lock = new(); // FastBertTokenizer reuses internal buffers

    private WordPieceTokenizer(string[] vocab, bool lowercase, string source)
    {
        _vocab = vocab;
        Lowercase = lowercase;
        var index = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < vocab.Length; i++) index.TryAdd(vocab[i], i);
        int Find(string token) => index.TryGetValue(token, out int id) ? id
            : throw new InvalidDataException($"WordPiece vocabulary '{source}' has no {token} token");
        Special = new SpecialTokenIds(Find(SpecialTokenIds.PadText), Find(SpecialTokenIds.ClsText), Find(SpecialTokenIds.SepText),
                                      Find(SpecialTokenIds.MaskText), Find(SpecialTokenIds.UnkText));
        using var reader = new StringReader(string.Join('\n', vocab));
        _inner.LoadVocabulary(reader, lowercase);
        Fingerprint = Tokenizers.Fnv1a(new[] { "wordpiece", lowercase ? "lower" : "cased" }.Concat(vocab));
    }

    public string Kind => "wordpiece";
    public bool Lowercase { get; }
    public int VocabSize => _vocab.Length;
    public SpecialTokenIds Special { get; }
    public ulong Fingerprint { get; }

    /// <summary>A tokenizer over vocabulary lines (index = id).</summary>
    public static WordPieceTokenizer FromVocabulary(IReadOnlyList<string> vocab, bool lowercase = true) =>
        new(vocab.ToArray(), lowercase, "(in memory)");

    /// <summary>Loads vocab.txt from a folder (a Hugging Face BERT folder or one of our checkpoints).</summary>
    public static WordPieceTokenizer Load(string folder)
    {
        string path = Path.Combine(folder, FileName);
        var lines = ReadVocabulary(path);
        bool lowercase = true;
        string config = Path.Combine(folder, "tokenizer_config.json");
        if (File.Exists(config))
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(config));
            if (doc.RootElement.TryGetProperty("do_lower_case", out var lc) && lc.ValueKind is JsonValueKind.True or JsonValueKind.False)
                lowercase = lc.GetBoolean();
        }
        return new WordPieceTokenizer(lines.ToArray(), lowercase, path);
    }

    /// <summary>A vocab.txt's tokens, one a line (id = line number): CRLF and LF line ends alike, a trailing newline is no token.</summary>
    public static IReadOnlyList<string> ReadVocabulary(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: no such vocabulary file", path);
        return ParseVocabulary(File.ReadAllText(path, Encoding.UTF8));
    }

    public static IReadOnlyList<string> ParseVocabulary(string text)
    {
        var lines = text.Split('\n').Select(l => l.EndsWith('\r') ? l[..^1] : l).ToList();
        while (lines.Count > 0 && lines[^1].Length == 0) lines.RemoveAt(lines.Count - 1);
        return lines;
    }

    public void Save(string folder)
    {
        Directory.CreateDirectory(folder);
        AtomicFile.Write(Path.Combine(folder, FileName), stream =>
        {
            var bytes = Encoding.UTF8.GetBytes(string.Join('\n', _vocab) + "\n");
            stream.Write(bytes);
        });
        if (!Lowercase)
            AtomicFile.Write(Path.Combine(folder, "tokenizer_config.json"),
                stream => stream.Write("{\n  \"do_lower_case\": false\n}\n"u8));
    }

    public int[] Encode(string text)
    {
        var ids = new List<int>();
        Encode(text, ids);
        return ids.ToArray();
    }

    public void Encode(string text, List<int> output)
    {
        ArgumentNullException.ThrowIfNull(text);
        foreach (var (plain, special) in Tokenizers.SplitSpecials(text, Special))
        {
            if (plain == null) { output.Add(special); continue; }
            EncodePlain(Lowercase ? AccentFolding.Strip(plain) : plain, output);
        }
    }

    private void EncodePlain(string text, List<int> output)
    {
        lock (_lock)
        {
            // Every token covers at least one char; normalisation can expand a few, hence the slack.
            int need = 2 * text.Length + 8, count;
            while (true)
            {
                if (_buffer.Length < need) { _buffer = new long[need]; _mask = new long[need]; }
                count = _inner.Encode(text, _buffer.AsSpan(0, need), _mask.AsSpan(0, need), padTo: null);
                if (count < need) break;
                need *= 2; // a full buffer may mean truncation: retry with more room
            }
            // FastBertTokenizer wraps the ids in [CLS] ... [SEP]; ours leaves that to the model input.
            int start = count > 0 && _buffer[0] == Special.Cls ? 1 : 0;
            int end = count > start && _buffer[count - 1] == Special.Sep ? count - 1 : count;
            for (int i = start; i < end; i++) output.Add((int)_buffer[i]);
        }
    }

    public string Decode(ReadOnlySpan<int> ids, bool skipSpecial = false)
    {
        var sb = new StringBuilder();
        foreach (int id in ids)
        {
            string token = TokenText(id);
            if (skipSpecial && Special.IsSpecial(id)) continue;
            if (token.StartsWith("##", StringComparison.Ordinal)) sb.Append(token, 2, token.Length - 2);
            else
            {
                if (sb.Length > 0) sb.Append(' ');
                sb.Append(token);
            }
        }
        return sb.ToString();
    }

    public string TokenText(int id)
    {
        if (id < 0 || id >= _vocab.Length) throw new ArgumentOutOfRangeException(nameof(id), id, $"id outside [0, {_vocab.Length})");
        return _vocab[id];
    }
}
