using System.Globalization;
using System.Text;

namespace NativeSparsity.Tests.Models;

/// <summary>
/// An independent reference for bert-base-uncased's tokenization, written step by step after
/// Hugging Face's BertTokenizer (BasicTokenizer + WordpieceTokenizer) and sharing no code with the
/// product's: literal special tokens kept; NFC; control characters dropped, whitespace unified (by
/// code point, so an emoji is one character); spaces around CJK ideographs; whitespace split; per
/// word lower-casing, NFD and removal of non-spacing marks, a split at every punctuation character
/// (ASCII symbols and Unicode P*); greedy longest-match WordPiece with "##", [UNK] for words that do
/// not decompose or exceed 100 characters. Needs ICU (string.Normalize), which the test process has.
/// </summary>
internal sealed class HfBertReferenceTokenizer
{
    private static readonly string[] Specials = { "[CLS]", "[SEP]", "[MASK]", "[PAD]", "[UNK]" };
    private readonly Dictionary<string, int> _ids = new(StringComparer.Ordinal);

    public HfBertReferenceTokenizer(IReadOnlyList<string> vocab)
    {
        for (int i = 0; i < vocab.Count; i++) _ids.TryAdd(vocab[i], i);
    }

    /// <summary>[CLS] + the ids of the text + [SEP].</summary>
    public List<int> Encode(string text)
    {
        var ids = new List<int> { _ids["[CLS]"] };
        foreach (string piece in SplitSpecials(text))
        {
            if (Specials.Contains(piece)) { ids.Add(_ids[piece]); continue; }
            foreach (string word in BasicTokens(piece)) ids.AddRange(WordPiece(word));
        }
        ids.Add(_ids["[SEP]"]);
        return ids;
    }

    private static IEnumerable<string> SplitSpecials(string text)
    {
        int start = 0;
        while (start < text.Length)
        {
            var hits = Specials.Select(s => (s, at: text.IndexOf(s, start, StringComparison.Ordinal))).Where(h => h.at >= 0).ToList();
            if (hits.Count == 0) { yield return text[start..]; yield break; }
            var first = hits.MinBy(h => h.at);
            if (first.at > start) yield return text[start..first.at];
            yield return first.s;
            start = first.at + first.s.Length;
        }
    }

    private static IEnumerable<string> BasicTokens(string text)
    {
        var cleaned = new StringBuilder();
        foreach (var rune in text.Normalize(NormalizationForm.FormC).EnumerateRunes())
        {
            int cp = rune.Value;
            if (cp == 0 || cp == 0xFFFD || IsControl(rune)) continue;
            if (IsWhitespace(rune)) cleaned.Append(' ');
            else if (IsCjk(cp)) cleaned.Append(' ').Append(rune.ToString()).Append(' ');
            else cleaned.Append(rune.ToString());
        }
        foreach (string word in cleaned.ToString().Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            string folded = StripAccents(word.ToLowerInvariant());
            var current = new StringBuilder();
            foreach (var rune in folded.EnumerateRunes())
            {
                if (IsPunctuation(rune))
                {
                    if (current.Length > 0) { yield return current.ToString(); current.Clear(); }
                    yield return rune.ToString();
                }
                else current.Append(rune.ToString());
            }
            if (current.Length > 0) yield return current.ToString();
        }
    }

    private IEnumerable<int> WordPiece(string word)
    {
        var runes = word.EnumerateRunes().Select(r => r.ToString()).ToArray();
        if (runes.Length > 100) return new[] { _ids["[UNK]"] };
        var pieces = new List<int>();
        int start = 0;
        while (start < runes.Length)
        {
            int end = runes.Length, found = -1;
            while (end > start)
            {
                string candidate = (start > 0 ? "##" : "") + string.Concat(runes[start..end]);
                if (_ids.TryGetValue(candidate, out int id)) { found = id; break; }
                end--;
            }
            if (found < 0) return new[] { _ids["[UNK]"] };
            pieces.Add(found);
            start = end;
        }
        return pieces;
    }

    private static string StripAccents(string text)
    {
        var sb = new StringBuilder();
        foreach (char c in text.Normalize(NormalizationForm.FormD))
            if (CharUnicodeInfo.GetUnicodeCategory(c) != UnicodeCategory.NonSpacingMark) sb.Append(c);
        return sb.ToString();
    }

    private static bool IsWhitespace(Rune r) =>
        r.Value is ' ' or '\t' or '\n' or '\r' || Rune.GetUnicodeCategory(r) == UnicodeCategory.SpaceSeparator;

    private static bool IsControl(Rune r)
    {
        if (r.Value is '\t' or '\n' or '\r') return false;
        return Rune.GetUnicodeCategory(r) is UnicodeCategory.Control or UnicodeCategory.Format or UnicodeCategory.OtherNotAssigned
            or UnicodeCategory.PrivateUse or UnicodeCategory.Surrogate;
    }

    private static bool IsPunctuation(Rune r)
    {
        int cp = r.Value;
        if (cp is >= 33 and <= 47 or >= 58 and <= 64 or >= 91 and <= 96 or >= 123 and <= 126) return true;
        return Rune.GetUnicodeCategory(r) is UnicodeCategory.ConnectorPunctuation or UnicodeCategory.DashPunctuation
            or UnicodeCategory.OpenPunctuation or UnicodeCategory.ClosePunctuation or UnicodeCategory.InitialQuotePunctuation
            or UnicodeCategory.FinalQuotePunctuation or UnicodeCategory.OtherPunctuation;
    }

    private static bool IsCjk(int cp) =>
        cp is >= 0x4E00 and <= 0x9FFF or >= 0x3400 and <= 0x4DBF or >= 0x20000 and <= 0x2A6DF or >= 0x2A700 and <= 0x2B73F
            or >= 0x2B740 and <= 0x2B81F or >= 0x2B820 and <= 0x2CEAF or >= 0xF900 and <= 0xFAFF or >= 0x2F800 and <= 0x2FA1F;
}
