namespace NativeSparsity.Models.Data.WordNet;

/// <summary>The four WordNet parts of speech, one data file each (adjective satellites live in data.adj).</summary>
public enum WordNetPos { Noun, Verb, Adjective, Adverb }

public static class WordNetPosExtensions
{
    public static string DataFileName(this WordNetPos pos) => pos switch
    {
        WordNetPos.Noun => "data.noun",
        WordNetPos.Verb => "data.verb",
        WordNetPos.Adjective => "data.adj",
        WordNetPos.Adverb => "data.adv",
        _ => throw new ArgumentOutOfRangeException(nameof(pos), pos, null),
    };

    /// <summary>The part of speech of an ss_type or pointer pos letter (n, v, a, s, r).</summary>
    public static WordNetPos FromLetter(char c) => c switch
    {
        'n' => WordNetPos.Noun,
        'v' => WordNetPos.Verb,
        'a' or 's' => WordNetPos.Adjective,
        'r' => WordNetPos.Adverb,
        _ => throw new FormatException($"'{c}' is not a WordNet part of speech (n, v, a, s, r)"),
    };
}

/// <summary>A word form of a synset: lemma as stored (spaces as underscores), lex_id, and for adjectives
/// an optional syntactic marker: "p" (predicate), "a" (prenominal), "ip" (immediately postnominal).</summary>
public sealed record WordNetWord(string Lemma, int LexId, string? Marker)
{
    public string Text => Lemma.Replace('_', ' ');
}

/// <summary>A pointer to another synset; Source/Target are word numbers (1-based), both 0 for a
/// semantic pointer between whole synsets.</summary>
public sealed record WordNetPointer(string Symbol, long TargetOffset, char TargetPos, int Source, int Target)
{
    public bool IsSemantic => Source == 0 && Target == 0;
}

/// <summary>A generic verb frame (1..35) for word WordNumber, or for all words when it is 0.</summary>
public sealed record WordNetFrame(int FrameNumber, int WordNumber);

/// <summary>One line of a wndb(5) data file.</summary>
public sealed record WordNetSynset(
    long Offset,
    int LexFileNumber,
    char SsType,
    IReadOnlyList<WordNetWord> Words,
    IReadOnlyList<WordNetPointer> Pointers,
    IReadOnlyList<WordNetFrame> Frames,
    string Gloss,
    string Definition,
    IReadOnlyList<string> Examples)
{
    public WordNetPos Pos => WordNetPosExtensions.FromLetter(SsType);
    public string LexFileName => LexNames.Name(LexFileNumber);
}
