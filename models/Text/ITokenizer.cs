namespace NativeSparsity.Models.Text;

/// <summary>Ids of the five special tokens every tokenizer here provides.</summary>
public readonly record struct SpecialTokenIds(int Pad, int Cls, int Sep, int Mask, int Unk)
{
    public const string PadText = "[PAD]", ClsText = "[CLS]", SepText = "[SEP]", MaskText = "[MASK]", UnkText = "[UNK]";

    /// <summary>The special token texts in the order the compact vocabulary gives them ids 0..4.</summary>
    public static IReadOnlyList<string> Texts { get; } = new[] { PadText, ClsText, SepText, MaskText, UnkText };

    public bool IsSpecial(int id) => id == Pad || id == Cls || id == Sep || id == Mask || id == Unk;
}

/// <summary>
/// Text to token ids and back. <see cref="Encode(string, List{int})"/> adds no [CLS]/[SEP]; the
/// model's input builder does. The literal texts "[PAD]", "[CLS]", "[SEP]", "[MASK]", "[UNK]" in the
/// input become their special ids (what fill-mask relies on).
/// </summary>
public interface ITokenizer
{
    /// <summary>"compact-bpe" or "wordpiece".</summary>
    string Kind { get; }

    /// <summary>Number of ids; every id is in [0, VocabSize).</summary>
    int VocabSize { get; }

    SpecialTokenIds Special { get; }

    /// <summary>A 64-bit hash of the vocabulary, stored in token shards to catch a mismatched tokenizer.</summary>
    ulong Fingerprint { get; }

    /// <summary>Appends the ids of <paramref name="text"/> to <paramref name="output"/>.</summary>
    void Encode(string text, List<int> output);

    /// <summary>The ids of <paramref name="text"/>.</summary>
    int[] Encode(string text);

    /// <summary>Text of an id sequence; special ids appear as their texts unless skipped.</summary>
    string Decode(ReadOnlySpan<int> ids, bool skipSpecial = false);

    /// <summary>A readable form of one id (for fill-mask listings).</summary>
    string TokenText(int id);

    /// <summary>Writes the vocabulary file(s) into <paramref name="folder"/> (a checkpoint folder).</summary>
    void Save(string folder);
}

/// <summary>Loads whichever tokenizer a checkpoint folder holds.</summary>
public static class Tokenizers
{
    public static ITokenizer Load(string folder)
    {
        if (File.Exists(Path.Combine(folder, CompactBpeTokenizer.FileName))) return CompactBpeTokenizer.Load(folder);
        if (File.Exists(Path.Combine(folder, WordPieceTokenizer.FileName))) return WordPieceTokenizer.Load(folder);
        throw new FileNotFoundException(
            $"no tokenizer in '{folder}': expected {CompactBpeTokenizer.FileName} (compact BPE) or {WordPieceTokenizer.FileName} (WordPiece)");
    }

    /// <summary>
    /// The folder's tokenizer, checked against the model it belongs to: a non-empty vocabulary of
    /// exactly the config's vocab_size (a shorter one fails later with ids out of range), and every
    /// special token inside it.
    /// </summary>
    public static ITokenizer LoadFor(string folder, int configVocabSize)
    {
        var tokenizer = Load(folder);
        if (tokenizer.VocabSize == 0) throw new InvalidDataException($"{folder}: the vocabulary is empty");
        if (tokenizer.VocabSize != configVocabSize)
            throw new InvalidDataException($"{folder}: the vocabulary holds {tokenizer.VocabSize} tokens but config.json's vocab_size is {configVocabSize}");
        var sp = tokenizer.Special;
        foreach (var (name, id) in new[] { ("[PAD]", sp.Pad), ("[CLS]", sp.Cls), ("[SEP]", sp.Sep), ("[MASK]", sp.Mask), ("[UNK]", sp.Unk) })
            if ((uint)id >= (uint)tokenizer.VocabSize)
                throw new InvalidDataException($"{folder}: the special token {name} is missing from the vocabulary (id {id})");
        return tokenizer;
    }

    /// <summary>
    /// Encodes documents in parallel; results[i] holds the ids of texts[i], so the output does not
    /// depend on scheduling. Tokenizers must be safe to call from several threads (both here are:
    /// SharpToken's encoder is read-only after construction, the WordPiece wrapper takes a lock).
    /// </summary>
    public static int[][] EncodeBatch(ITokenizer tokenizer, IReadOnlyList<string> texts)
    {
        var results = new int[texts.Count][];
        Parallel.For(0, texts.Count, () => new List<int>(), (i, _, ids) =>
        {
            ids.Clear();
            tokenizer.Encode(texts[i], ids);
            results[i] = ids.ToArray();
            return ids;
        }, _ => { });
        return results;
    }

    /// <summary>FNV-1a 64 over a sequence of strings, each terminated by a 0 char.</summary>
    internal static ulong Fnv1a(IEnumerable<string> items)
    {
        ulong h = 14695981039346656037UL;
        foreach (string s in items)
        {
            foreach (char c in s) { h ^= c; h *= 1099511628211UL; }
            h ^= 0; h *= 1099511628211UL;
        }
        return h;
    }

    /// <summary>
    /// Splits text around literal special-token texts: yields (run, -1) for each run of ordinary text
    /// and (null, id) for each special token found.
    /// </summary>
    internal static IEnumerable<(string? Text, int Special)> SplitSpecials(string text, SpecialTokenIds ids)
    {
        int start = 0, pos = 0;
        while ((pos = text.IndexOf('[', pos)) >= 0)
        {
            int id = MatchSpecial(text, pos, ids, out int length);
            if (id < 0) { pos++; continue; }
            if (pos > start) yield return (text[start..pos], -1);
            yield return (null, id);
            pos += length;
            start = pos;
        }
        if (start < text.Length) yield return (start == 0 ? text : text[start..], -1);
    }

    private static int MatchSpecial(string text, int pos, SpecialTokenIds ids, out int length)
    {
        var span = text.AsSpan(pos);
        (string t, int id)[] table =
        {
            (SpecialTokenIds.MaskText, ids.Mask), (SpecialTokenIds.PadText, ids.Pad), (SpecialTokenIds.ClsText, ids.Cls),
            (SpecialTokenIds.SepText, ids.Sep), (SpecialTokenIds.UnkText, ids.Unk),
        };
        foreach (var (t, id) in table)
        {
            if (span.StartsWith(t, StringComparison.Ordinal)) { length = t.Length; return id; }
        }
        length = 0;
        return -1;
    }
}
