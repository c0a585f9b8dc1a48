namespace NativeSparsity.Models.Data.WordNet;

/// <summary>The 45 lexicographer files of WordNet 3.0, indexed by lex_filenum (lexnames(5)).</summary>
public static class LexNames
{
    public static IReadOnlyList<string> All { get; } = new[]
    {
        "adj.all", "adj.pert", "adv.all", "noun.Tops", "noun.act", "noun.animal", "noun.artifact",
        "noun.attribute", "noun.body", "noun.cognition", "noun.communication", "noun.event", "noun.feeling",
        "noun.food", "noun.group", "noun.location", "noun.motive", "noun.object", "noun.person",
        "noun.phenomenon", "noun.plant", "noun.possession", "noun.process", "noun.quantity", "noun.relation",
        "noun.shape", "noun.state", "noun.substance", "noun.time", "verb.body", "verb.change", "verb.cognition",
        "verb.communication", "verb.competition", "verb.consumption", "verb.contact", "verb.creation",
        "verb.emotion", "verb.motion", "verb.perception", "verb.possession", "verb.social", "verb.stative",
        "verb.weather", "adj.ppl",
    };

    public static string Name(int lexFileNumber) =>
        lexFileNumber >= 0 && lexFileNumber < All.Count
            ? All[lexFileNumber]
            : throw new ArgumentOutOfRangeException(nameof(lexFileNumber), lexFileNumber, $"lex_filenum must be in [0, {All.Count})");

    public static int Number(string name)
    {
        for (int i = 0; i < All.Count; i++) if (All[i] == name) return i;
        throw new ArgumentException($"'{name}' is not a WordNet lexicographer file", nameof(name));
    }
}
