using System.Text;
using NativeSparsity.Models.Data.WordNet;

namespace NativeSparsity.Models.Data.Corpus;

/// <summary>
/// WordNet as a pre-training corpus: one document per synset, nouns then verbs, adjectives and
/// adverbs in file order (117,659 documents in WordNet 3.0, about 1.75 M words: 1.46 M of glosses
/// and 0.29 M of lemmas). A document reads
/// <c>dog, domestic dog, Canis familiaris: a member of the genus Canis ... ; occurs in many breeds. The dog barked all night.</c>
/// that is, the synset's words, a colon, the definition, then each example as a sentence.
/// </summary>
public sealed class WordNetCorpus : IDocumentSource
{
    /// <summary>Synsets in WordNet 3.0 (82,115 + 13,767 + 18,156 + 3,621).</summary>
    public const int WordNet30Synsets = 117_659;

    private readonly WordNetSource _source;
    private long _done;

    public WordNetCorpus(WordNetSource? source = null) => _source = source ?? WordNetSource.Embedded;

    public string Description => $"WordNet ({_source}), one document per synset";
    public double? Progress => Math.Min(1, (double)Interlocked.Read(ref _done) / WordNet30Synsets);

    public IEnumerable<string> Documents()
    {
        Interlocked.Exchange(ref _done, 0);
        foreach (var synset in _source.AllSynsets())
        {
            Interlocked.Increment(ref _done);
            yield return DocumentText(synset);
        }
    }

    public static string DocumentText(WordNetSynset synset)
    {
        var sb = new StringBuilder();
        for (int i = 0; i < synset.Words.Count; i++)
        {
            if (i > 0) sb.Append(", ");
            sb.Append(synset.Words[i].Text);
        }
        sb.Append(": ").Append(synset.Definition);
        if (synset.Definition.Length > 0 && !EndsSentence(synset.Definition)) sb.Append('.');
        foreach (string example in synset.Examples)
        {
            sb.Append(' ').Append(char.ToUpperInvariant(example[0])).Append(example, 1, example.Length - 1);
            if (!EndsSentence(example)) sb.Append('.');
        }
        return sb.ToString();
    }

    private static bool EndsSentence(string s) => s[^1] is '.' or '!' or '?';
}
