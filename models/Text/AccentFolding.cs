using System.Globalization;
using System.Text;

namespace NativeSparsity.Models.Text;

/// <summary>
/// Accent stripping as BERT's uncased tokenizer does it (NFD, then drop every non-spacing mark,
/// category Mn), without ICU: the project runs with invariant globalization, where string.Normalize
/// leaves non-ASCII text unchanged. accent-folding.tsv (embedded) maps each code point whose NFD
/// changes once its marks are dropped to what is left (é -> e, で -> て, U+0958 -> U+0915); Hangul
/// syllables decompose to their conjoining jamo by the Unicode algorithm, as NFD does; the
/// categories come from .NET's own Unicode data, which needs no ICU.
/// </summary>
internal static class AccentFolding
{
    private const string TableResource = "text/accent-folding.tsv";
    private const int HangulFirst = 0xAC00, HangulCount = 11172, JamoL = 0x1100, JamoV = 0x1161, JamoT = 0x11A7, VCount = 21, TCount = 28;

    private static readonly Dictionary<int, string> Map = LoadMap();

    private static Dictionary<int, string> LoadMap()
    {
        using var stream = typeof(AccentFolding).Assembly.GetManifestResourceStream(TableResource)
            ?? throw new InvalidOperationException($"the models assembly lacks its resource '{TableResource}'");
        using var reader = new StreamReader(stream, Encoding.UTF8);
        var map = new Dictionary<int, string>(2048);
        while (reader.ReadLine() is { } line)
        {
            if (line.Length == 0 || line[0] == '#') continue;
            var parts = line.Split('\t');
            var target = new StringBuilder();
            foreach (string cp in parts[1].Split(' ')) target.Append(char.ConvertFromUtf32(int.Parse(cp, NumberStyles.HexNumber, CultureInfo.InvariantCulture)));
            map[int.Parse(parts[0], NumberStyles.HexNumber, CultureInfo.InvariantCulture)] = target.ToString();
        }
        return map;
    }

    public static string Strip(string text)
    {
        int i = 0;
        while (i < text.Length && text[i] < 0xC0) i++; // nothing below U+00C0 decomposes or is a mark
        if (i == text.Length) return text;
        var sb = new StringBuilder(text.Length);
        sb.Append(text, 0, i);
        foreach (var rune in text.AsSpan(i).EnumerateRunes())
        {
            int cp = rune.Value;
            if (Rune.GetUnicodeCategory(rune) == UnicodeCategory.NonSpacingMark) continue;
            if (cp is >= HangulFirst and < HangulFirst + HangulCount)
            {
                int s = cp - HangulFirst;
                sb.Append((char)(JamoL + s / (VCount * TCount))).Append((char)(JamoV + s % (VCount * TCount) / TCount));
                if (s % TCount != 0) sb.Append((char)(JamoT + s % TCount));
            }
            else if (Map.TryGetValue(cp, out var folded)) sb.Append(folded);
            else sb.Append(rune.ToString());
        }
        return sb.ToString();
    }
}
