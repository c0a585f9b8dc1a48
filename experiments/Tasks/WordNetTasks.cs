using NativeSparsity.Engine.Random;
using NativeSparsity.Models.Data.WordNet;

namespace NativeSparsity.Experiments.Tasks;

/// <summary>Options of the embedded WordNet tasks.</summary>
/// <param name="Seed">Chooses the split of each synset, negatives, and the order of examples.</param>
/// <param name="TrainFraction">Share of synsets in train; DevFraction in dev; the rest in test.</param>
/// <param name="MaxExamplesPerSplit">Cap per split (0 = all); balanced tasks keep half per label.</param>
public sealed record WordNetTaskOptions(ulong Seed = 20261129, double TrainFraction = 0.8, double DevFraction = 0.1, int MaxExamplesPerSplit = 0)
{
    public void Validate()
    {
        if (!(TrainFraction > 0 && DevFraction > 0 && TrainFraction + DevFraction < 1))
            throw new ArgumentException($"split fractions train {TrainFraction} and dev {DevFraction} must be positive and sum below 1 (the rest is test)");
        if (MaxExamplesPerSplit < 0) throw new ArgumentException($"MaxExamplesPerSplit {MaxExamplesPerSplit} must be 0 (all) or positive");
    }
}

/// <summary>
/// Four classification tasks built from the embedded WordNet 3.0 (nothing downloaded):
/// supersense (definition → lexicographer file, 45 classes), hypernym (definition pair → is the
/// second a direct hypernym of the first), antonym (adjective definition pair → antonyms or
/// similar-to) and sense (word: example sentence + a definition of that word → is it the sense used).
/// Every example is assigned to train/dev/test by the synset of its first text, through a Philox hash
/// of (part of speech, offset) under the seed, the same for all tasks: a synset's first-text
/// examples never cross splits (its definition can still be some other example's second text).
/// </summary>
public static class WordNetTasks
{
    public static IReadOnlyList<string> Names { get; } = new[] { "supersense", "hypernym", "antonym", "sense" };

    public static readonly string[] SplitNames = { "train", "dev", "test" };

    private const ulong SplitStream = 0x5350_4C49_5400_0001; // one stream for every task: splits agree across tasks

    public static ClassificationTask Build(string name, WordNetTaskOptions? options = null, WordNetSource? source = null)
    {
        (options ?? new WordNetTaskOptions()).Validate(); // before the (slow) first load of WordNet
        return BuildValidated(name, options, source);
    }

    private static ClassificationTask BuildValidated(string name, WordNetTaskOptions? options, WordNetSource? source) => name.ToLowerInvariant() switch
    {
        "supersense" => Supersense(options, source),
        "hypernym" => Hypernym(options, source),
        "antonym" => Antonym(options, source),
        "sense" => Sense(options, source),
        _ => throw new ArgumentException($"'{name}' is not an embedded WordNet task (expected one of {string.Join(", ", Names)})", nameof(name)),
    };

    /// <summary>Split index (0 train, 1 dev, 2 test) of a synset under a seed.</summary>
    public static int SplitOf(WordNetPos pos, long offset, WordNetTaskOptions options)
    {
        double u = Philox.Bits(options.Seed, SplitStream, Key(pos, offset)) / 4294967296.0;
        return u < options.TrainFraction ? 0 : u < options.TrainFraction + options.DevFraction ? 1 : 2;
    }

    private static ulong Key(WordNetPos pos, long offset) => ((ulong)pos << 40) | (ulong)offset;
    private static ulong Key(WordNetSynset s) => Key(s.Pos, s.Offset);

    // ---- supersense ---------------------------------------------------------------------------

    /// <summary>A synset's definition (its words left out) → its lexicographer file, 45 labels.</summary>
    public static ClassificationTask Supersense(WordNetTaskOptions? options = null, WordNetSource? source = null)
    {
        options ??= new WordNetTaskOptions();
        var index = WordNetIndex.Of(source);
        var candidates = new List<Candidate>();
        foreach (var s in index.All)
        {
            if (s.Definition.Length == 0) continue;
            candidates.Add(new Candidate(s, new TaskExample(s.Definition, null, s.LexFileNumber)));
        }
        return Assemble("supersense", LexNames.All, new[] { TaskMetric.Accuracy }, isPair: false, candidates, options, balanced: false, salt: 1);
    }

    // ---- hypernym -----------------------------------------------------------------------------

    /// <summary>
    /// Noun and verb definition pairs: label 1 when the second synset is a direct hypernym (@ or @i)
    /// of the first. Each synset with a hypernym gives one positive and one negative; the negative is,
    /// by a coin from the seed, a sibling (another hyponym of the same hypernym) or a random synset of
    /// the same part of speech, neither of them a hypernym of the first.
    /// </summary>
    public static ClassificationTask Hypernym(WordNetTaskOptions? options = null, WordNetSource? source = null)
    {
        options ??= new WordNetTaskOptions();
        var index = WordNetIndex.Of(source);
        var candidates = new List<Candidate>();
        foreach (var pos in new[] { WordNetPos.Noun, WordNetPos.Verb })
        {
            var pool = index.ByPos[pos];
            foreach (var x in pool)
            {
                if (x.Definition.Length == 0) continue;
                var hypernyms = x.Pointers.Where(p => p.Symbol is "@" or "@i").Select(p => index.Get(p.TargetPos, p.TargetOffset)).ToList();
                if (hypernyms.Count == 0) continue;
                ulong key = Key(x);
                var h = hypernyms[(int)(Philox.Bits(options.Seed, 2, key * 4) % (uint)hypernyms.Count)];
                bool Acceptable(WordNetSynset c) =>
                    !ReferenceEquals(c, x) && c.Definition.Length > 0 && !hypernyms.Any(y => ReferenceEquals(y, c)) && c.Definition != h.Definition;
                WordNetSynset? negative = null;
                if ((Philox.Bits(options.Seed, 2, key * 4 + 1) & 1) == 0)
                {
                    // A few seeded draws among h's hyponyms instead of filtering them all (some have thousands).
                    var siblings = index.HyponymsOf(h);
                    for (uint attempt = 0; negative == null && siblings.Count > 1 && attempt < 8; attempt++)
                    {
                        var c = siblings[(int)(Philox.Bits(options.Seed, 6, key * 8 + attempt) % (uint)siblings.Count)];
                        if (Acceptable(c)) negative = c;
                    }
                }
                for (uint attempt = 0; negative == null && attempt < 16; attempt++)
                {
                    var r = pool[(int)(Philox.Bits(options.Seed, 3, key * 16 + attempt) % (uint)pool.Count)];
                    if (Acceptable(r)) negative = r;
                }
                if (negative == null || h.Definition.Length == 0) continue;
                candidates.Add(new Candidate(x, new TaskExample(x.Definition, h.Definition, 1)));
                candidates.Add(new Candidate(x, new TaskExample(x.Definition, negative.Definition, 0)));
            }
        }
        return Assemble("hypernym", new[] { "not_hypernym", "hypernym" }, new[] { TaskMetric.Accuracy, TaskMetric.F1 }, isPair: true, candidates, options, balanced: true, salt: 2);
    }

    // ---- antonym ------------------------------------------------------------------------------

    /// <summary>
    /// Adjective definition pairs: label 1 for antonyms (! pointers), 0 for similar-to (&amp;). Each
    /// unordered pair appears once, its order (and so its split) set by a coin from the seed; similar
    /// pairs are subsampled per split to the number of antonym pairs.
    /// </summary>
    public static ClassificationTask Antonym(WordNetTaskOptions? options = null, WordNetSource? source = null)
    {
        options ??= new WordNetTaskOptions();
        var index = WordNetIndex.Of(source);
        var candidates = new List<Candidate>();
        var seen = new HashSet<(ulong, ulong)>();
        foreach (var x in index.ByPos[WordNetPos.Adjective])
        {
            foreach (var p in x.Pointers)
            {
                if (p.Symbol is not ("!" or "&")) continue;
                var y = index.Get(p.TargetPos, p.TargetOffset);
                if (y.Pos != WordNetPos.Adjective || y == x || x.Definition.Length == 0 || y.Definition.Length == 0) continue;
                ulong kx = Key(x), ky = Key(y);
                var pair = kx < ky ? (kx, ky) : (ky, kx);
                if (!seen.Add(pair)) continue; // both directions are listed; a pair both ! and & keeps the first seen
                bool swap = (Philox.Bits(options.Seed, 4, pair.Item1 ^ (pair.Item2 << 20)) & 1) != 0;
                var (first, second) = swap ? (y, x) : (x, y);
                candidates.Add(new Candidate(first, new TaskExample(first.Definition, second.Definition, p.Symbol == "!" ? 1 : 0)));
            }
        }
        return Assemble("antonym", new[] { "similar", "antonym" }, new[] { TaskMetric.Accuracy, TaskMetric.F1 }, isPair: true, candidates, options, balanced: true, salt: 4);
    }

    // ---- sense --------------------------------------------------------------------------------

    /// <summary>
    /// Word-in-context-like pairs: text A is "word: example sentence" for an example of synset S that
    /// contains one of S's words (whole word, case-insensitive, or with an -s/-es/-ed/-d/-ing ending),
    /// text B a definition of that word. Label 1 for S's own definition, 0 for the definition of
    /// another synset of the same lemma (same part of speech when there is one). One of each per example.
    /// </summary>
    public static ClassificationTask Sense(WordNetTaskOptions? options = null, WordNetSource? source = null)
    {
        options ??= new WordNetTaskOptions();
        var index = WordNetIndex.Of(source);
        var candidates = new List<Candidate>();
        foreach (var s in index.All)
        {
            if (s.Definition.Length == 0) continue;
            for (int e = 0; e < s.Examples.Count; e++)
            {
                string example = s.Examples[e];
                foreach (var word in s.Words)
                {
                    string lemma = word.Text.ToLowerInvariant();
                    var others = index.SynsetsOf(lemma).Where(o => o != s && o.Definition.Length > 0 && o.Definition != s.Definition).ToList();
                    if (others.Count == 0 || !ContainsWord(example, lemma)) continue;
                    var samePos = others.Where(o => o.Pos == s.Pos).ToList();
                    var pool = samePos.Count > 0 ? samePos : others;
                    var other = pool[(int)(Philox.Bits(options.Seed, 5, Key(s) * 64 + (ulong)e) % (uint)pool.Count)];
                    string textA = $"{word.Text}: {example}";
                    candidates.Add(new Candidate(s, new TaskExample(textA, s.Definition, 1)));
                    candidates.Add(new Candidate(s, new TaskExample(textA, other.Definition, 0)));
                    break; // one word per example
                }
            }
        }
        return Assemble("sense", new[] { "other_sense", "same_sense" }, new[] { TaskMetric.Accuracy, TaskMetric.F1 }, isPair: true, candidates, options, balanced: true, salt: 5);
    }

    /// <summary>Whether <paramref name="lemma"/> occurs in <paramref name="text"/> as a whole word, optionally inflected.</summary>
    public static bool ContainsWord(string text, string lemma)
    {
        if (lemma.Length == 0) return false;
        for (int at = text.IndexOf(lemma, StringComparison.OrdinalIgnoreCase); at >= 0;
             at = text.IndexOf(lemma, at + 1, StringComparison.OrdinalIgnoreCase))
        {
            if (at > 0 && char.IsLetterOrDigit(text[at - 1])) continue;
            int end = at + lemma.Length;
            int tail = end;
            while (tail < text.Length && char.IsLetter(text[tail])) tail++;
            var suffix = text.AsSpan(end, tail - end);
            if (tail < text.Length && char.IsDigit(text[tail])) continue;
            if (suffix.Length == 0 || suffix is "s" or "es" or "ed" or "d" or "ing") return true;
        }
        return false;
    }

    // ---- assembly -----------------------------------------------------------------------------

    /// <summary>"n02084071": part-of-speech letter (n, v, a, r; satellites count as a) and offset.</summary>
    public static string SourceIdOf(WordNetSynset s) =>
        (s.Pos switch { WordNetPos.Noun => 'n', WordNetPos.Verb => 'v', WordNetPos.Adjective => 'a', _ => 'r' })
        + s.Offset.ToString("D8", System.Globalization.CultureInfo.InvariantCulture);

    private sealed record Candidate(WordNetSynset Owner, TaskExample Example);

    /// <summary>
    /// Splits candidates by their owner synset, orders each split by a seeded hash, then balances
    /// (balanced tasks: every label cut to the rarest label's count) and caps.
    /// </summary>
    private static ClassificationTask Assemble(string name, IReadOnlyList<string> labels, TaskMetric[] metrics, bool isPair,
                                               List<Candidate> candidates, WordNetTaskOptions options, bool balanced, ulong salt)
    {
        options.Validate();
        var perSplit = new List<(uint Order, TaskExample Example)>[3];
        for (int i = 0; i < 3; i++) perSplit[i] = new();
        for (int i = 0; i < candidates.Count; i++)
        {
            var c = candidates[i];
            uint order = Philox.Bits(options.Seed, 100 + salt, (ulong)i);
            var example = c.Example with { SourceId = SourceIdOf(c.Owner) };
            perSplit[SplitOf(c.Owner.Pos, c.Owner.Offset, options)].Add((order, example));
        }
        var splits = new List<TaskSplit>();
        for (int i = 0; i < 3; i++)
        {
            var ordered = perSplit[i].OrderBy(p => p.Order).ThenBy(p => p.Example.TextA, StringComparer.Ordinal).Select(p => p.Example).ToList();
            if (balanced)
            {
                int perLabel = labels.Select((_, l) => ordered.Count(e => e.Label == l)).Min();
                if (options.MaxExamplesPerSplit > 0) perLabel = Math.Min(perLabel, options.MaxExamplesPerSplit / labels.Count);
                var taken = new int[labels.Count];
                ordered = ordered.Where(e => taken[e.Label]++ < perLabel).ToList();
            }
            else if (options.MaxExamplesPerSplit > 0 && ordered.Count > options.MaxExamplesPerSplit)
            {
                ordered = ordered.GetRange(0, options.MaxExamplesPerSplit);
            }
            splits.Add(new TaskSplit(SplitNames[i], ordered));
        }
        return new ClassificationTask(name, labels, metrics, isPair, splits);
    }

    /// <summary>Markdown statistics of every task under <paramref name="options"/> (for docs/TASKS.md).</summary>
    public static string DescribeAll(WordNetTaskOptions? options = null, WordNetSource? source = null) =>
        string.Join(Environment.NewLine, Names.Select(n => Build(n, options, source).DescribeMarkdown()));
}

/// <summary>The synsets of one WordNet source, loaded once and indexed by (pos, offset) and lemma.</summary>
internal sealed class WordNetIndex
{
    private static readonly Dictionary<WordNetSource, WordNetIndex> Cache = new();
    private readonly Dictionary<ulong, WordNetSynset> _byKey = new();
    private readonly Dictionary<string, List<WordNetSynset>> _byLemma = new(StringComparer.Ordinal);

    private WordNetIndex(WordNetSource source)
    {
        Source = source;
        foreach (var pos in WordNetSource.AllPos)
        {
            var list = Parse(source, pos);
            ByPos[pos] = list;
            All.AddRange(list);
            foreach (var s in list)
            {
                _byKey[((ulong)pos << 40) | (ulong)s.Offset] = s;
                foreach (var w in s.Words)
                {
                    string lemma = w.Text.ToLowerInvariant();
                    if (!_byLemma.TryGetValue(lemma, out var owners)) _byLemma[lemma] = owners = new List<WordNetSynset>();
                    if (owners.Count == 0 || !ReferenceEquals(owners[^1], s)) owners.Add(s);
                }
            }
        }
    }

    /// <summary>Parses a data file's lines in parallel fixed chunks; the result is in file order.</summary>
    private static List<WordNetSynset> Parse(WordNetSource source, WordNetPos pos)
    {
        var lines = source.Lines(pos).ToArray();
        var synsets = new WordNetSynset?[lines.Length];
        string name = $"{source} {pos.DataFileName()}";
        const int Chunk = 4096;
        Parallel.For(0, (lines.Length + Chunk - 1) / Chunk, c =>
        {
            for (int i = c * Chunk, end = Math.Min(lines.Length, i + Chunk); i < end; i++)
                if (!WndbParser.IsHeaderLine(lines[i])) synsets[i] = WndbParser.ParseDataLine(lines[i], name, i + 1);
        });
        return synsets.Where(s => s != null).ToList()!;
    }

    /// <summary>Targets of a synset's hyponym (~, ~i) pointers, computed once per synset.</summary>
    public IReadOnlyList<WordNetSynset> HyponymsOf(WordNetSynset s)
    {
        lock (_hyponyms)
        {
            if (!_hyponyms.TryGetValue(s, out var list))
                _hyponyms[s] = list = s.Pointers.Where(p => p.Symbol is "~" or "~i").Select(p => Get(p.TargetPos, p.TargetOffset)).ToArray();
            return list;
        }
    }

    private readonly Dictionary<WordNetSynset, WordNetSynset[]> _hyponyms = new(ReferenceEqualityComparer.Instance);

    public WordNetSource Source { get; }
    public List<WordNetSynset> All { get; } = new();
    public Dictionary<WordNetPos, List<WordNetSynset>> ByPos { get; } = new();

    public static WordNetIndex Of(WordNetSource? source)
    {
        source ??= WordNetSource.Embedded;
        lock (Cache)
        {
            if (!Cache.TryGetValue(source, out var index)) Cache[source] = index = new WordNetIndex(source);
            return index;
        }
    }

    public WordNetSynset Get(char posLetter, long offset)
    {
        var pos = WordNetPosExtensions.FromLetter(posLetter);
        return _byKey.TryGetValue(((ulong)pos << 40) | (ulong)offset, out var s) ? s
            : throw new InvalidDataException($"{Source}: a pointer names synset {offset:D8} {posLetter}, which does not exist");
    }

    public IReadOnlyList<WordNetSynset> SynsetsOf(string lemma) =>
        _byLemma.TryGetValue(lemma, out var list) ? list : (IReadOnlyList<WordNetSynset>)Array.Empty<WordNetSynset>();
}
