using System.Globalization;
using System.Text;

namespace NativeSparsity.Models.Data.WordNet;

/// <summary>A data line that does not follow wndb(5); names the file and line.</summary>
public sealed class WordNetFormatException : FormatException
{
    public WordNetFormatException(string source, long lineNumber, string problem, Exception? inner = null)
        : base($"WordNet data '{source}', line {lineNumber}: {problem}", inner)
    {
        SourceName = source;
        LineNumber = lineNumber;
    }

    public string SourceName { get; }
    public long LineNumber { get; }
}

/// <summary>
/// Parses data lines of WordNet's database files (wndb(5)):
/// <c>synset_offset lex_filenum ss_type w_cnt word lex_id [word lex_id...] p_cnt [ptr...] [frames...] | gloss</c>
/// with w_cnt and lex_id in hexadecimal, p_cnt three decimal digits, each pointer
/// <c>pointer_symbol synset_offset pos source/target</c> (source/target four hex digits) and, in
/// data.verb only, <c>f_cnt + f_num w_num [+ f_num w_num...]</c>. Lines that begin with two spaces are
/// the license header and carry no synset.
/// </summary>
public static class WndbParser
{
    public static bool IsHeaderLine(string line) => line.StartsWith("  ", StringComparison.Ordinal) || line.Length == 0;

    public static WordNetSynset ParseDataLine(string line, string source = "(line)", long lineNumber = 0)
    {
        ArgumentNullException.ThrowIfNull(line);
        int bar = line.IndexOf(" | ", StringComparison.Ordinal);
        string head = bar >= 0 ? line[..bar] : line.TrimEnd();
        string gloss = bar >= 0 ? line[(bar + 3)..].TrimEnd() : "";
        string[] f = head.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        int i = 0;
        string Next(string what) => i < f.Length ? f[i++]
            : throw new WordNetFormatException(source, lineNumber, $"line ends where {what} was expected");
        int Int(string text, NumberStyles style, string what) =>
            int.TryParse(text, style, CultureInfo.InvariantCulture, out int v) && v >= 0 ? v
                : throw new WordNetFormatException(source, lineNumber, $"{what} '{text}' is not a valid number");

        string offsetText = Next("synset_offset");
        if (offsetText.Length != 8 || !long.TryParse(offsetText, NumberStyles.None, CultureInfo.InvariantCulture, out long offset))
            throw new WordNetFormatException(source, lineNumber, $"synset_offset '{offsetText}' is not 8 decimal digits");
        int lexFile = Int(Next("lex_filenum"), NumberStyles.None, "lex_filenum");
        if (lexFile >= LexNames.All.Count)
            throw new WordNetFormatException(source, lineNumber, $"lex_filenum {lexFile} is not one of the {LexNames.All.Count} lexicographer files");
        string ssType = Next("ss_type");
        if (ssType.Length != 1 || "nvasr".IndexOf(ssType[0]) < 0)
            throw new WordNetFormatException(source, lineNumber, $"ss_type '{ssType}' is not one of n, v, a, s, r");

        int wordCount = Int(Next("w_cnt"), NumberStyles.AllowHexSpecifier, "w_cnt");
        if (wordCount == 0) throw new WordNetFormatException(source, lineNumber, "w_cnt is 0");
        var words = new WordNetWord[wordCount];
        for (int w = 0; w < wordCount; w++)
        {
            string word = Next($"word {w + 1}");
            int lexId = Int(Next($"lex_id of word {w + 1}"), NumberStyles.AllowHexSpecifier, "lex_id");
            string? marker = null;
            if (word.EndsWith(')'))
            {
                int open = word.LastIndexOf('(');
                string m = open > 0 ? word[(open + 1)..^1] : "";
                if (m is "p" or "a" or "ip") { marker = m; word = word[..open]; }
            }
            words[w] = new WordNetWord(word, lexId, marker);
        }

        int pointerCount = Int(Next("p_cnt"), NumberStyles.None, "p_cnt");
        var pointers = new WordNetPointer[pointerCount];
        for (int p = 0; p < pointerCount; p++)
        {
            string symbol = Next($"pointer {p + 1} symbol");
            string target = Next($"pointer {p + 1} offset");
            if (target.Length != 8 || !long.TryParse(target, NumberStyles.None, CultureInfo.InvariantCulture, out long targetOffset))
                throw new WordNetFormatException(source, lineNumber, $"pointer {p + 1} offset '{target}' is not 8 decimal digits");
            string pos = Next($"pointer {p + 1} pos");
            if (pos.Length != 1 || "nvasr".IndexOf(pos[0]) < 0)
                throw new WordNetFormatException(source, lineNumber, $"pointer {p + 1} pos '{pos}' is not one of n, v, a, s, r");
            string st = Next($"pointer {p + 1} source/target");
            if (st.Length != 4 || !int.TryParse(st, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out int stValue))
                throw new WordNetFormatException(source, lineNumber, $"pointer {p + 1} source/target '{st}' is not 4 hex digits");
            pointers[p] = new WordNetPointer(symbol, targetOffset, pos[0], stValue >> 8, stValue & 0xFF);
        }

        var frames = new List<WordNetFrame>();
        if (i < f.Length && ssType == "v")
        {
            int frameCount = Int(Next("f_cnt"), NumberStyles.None, "f_cnt");
            for (int k = 0; k < frameCount; k++)
            {
                string plus = Next($"frame {k + 1}");
                if (plus != "+") throw new WordNetFormatException(source, lineNumber, $"frame {k + 1} starts with '{plus}', expected '+'");
                int fnum = Int(Next($"frame {k + 1} f_num"), NumberStyles.None, "f_num");
                int wnum = Int(Next($"frame {k + 1} w_num"), NumberStyles.AllowHexSpecifier, "w_num");
                frames.Add(new WordNetFrame(fnum, wnum));
            }
        }
        if (i != f.Length)
            throw new WordNetFormatException(source, lineNumber, $"unexpected '{f[i]}' after the pointers{(ssType == "v" ? " and frames" : "")}");
        if (bar < 0) throw new WordNetFormatException(source, lineNumber, "no ' | ' before the gloss");

        var (definition, examples) = SplitGloss(gloss);
        return new WordNetSynset(offset, lexFile, ssType[0], words, pointers, frames, gloss, definition, examples);
    }

    /// <summary>
    /// Splits a gloss into its definition and its quoted example sentences. Parts are separated by
    /// "; " outside double quotes; a part that starts with a quote is an example (the text between
    /// its first and last quote; an attribution after it, as in <c>"..." - Milton Berle</c>, is
    /// dropped); the other parts, joined by "; ", form the definition.
    /// </summary>
    public static (string Definition, string[] Examples) SplitGloss(string gloss)
    {
        var parts = new List<string>();
        var current = new StringBuilder();
        bool inQuote = false;
        for (int k = 0; k < gloss.Length; k++)
        {
            char c = gloss[k];
            if (c == '"') inQuote = !inQuote;
            if (c == ';' && !inQuote)
            {
                parts.Add(current.ToString().Trim());
                current.Clear();
                continue;
            }
            current.Append(c);
        }
        parts.Add(current.ToString().Trim());

        var definition = new List<string>();
        var examples = new List<string>();
        foreach (string part in parts)
        {
            if (part.Length == 0) continue;
            if (part[0] == '"')
            {
                int close = part.LastIndexOf('"');
                string example = close > 0 ? part[1..close] : part[1..];
                if (example.Trim().Length > 0) examples.Add(example.Trim());
            }
            else definition.Add(part);
        }
        return (string.Join("; ", definition), examples.ToArray());
    }
}
