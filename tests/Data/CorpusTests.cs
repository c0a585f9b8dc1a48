using NativeSparsity.Models.Data.Corpus;
using NativeSparsity.Models.Text;
using NativeSparsity.Tests.Engine;
using NUnit.Framework;

namespace NativeSparsity.Tests.Data;

[TestFixture]
public class CorpusTests
{
    private string _dir = "";

    [SetUp]
    public void SetUp()
    {
        _dir = Path.Combine(Path.GetTempPath(), "nsparse-corpus-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_dir);
    }

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    private sealed class ListSource(IReadOnlyList<string> docs) : IDocumentSource
    {
        public string Description => "test list";
        public IEnumerable<string> Documents() => docs;
        public double? Progress => null;
    }

    private sealed class Collect<T> : IProgress<T>
    {
        public readonly List<T> Items = new();
        public void Report(T value) => Items.Add(value);
    }

    [Test]
    public void BlankLinesSplitDocuments()
    {
        string a = Path.Combine(_dir, "a.txt"), b = Path.Combine(_dir, "sub", "b.txt");
        Directory.CreateDirectory(Path.GetDirectoryName(b)!);
        File.WriteAllText(a, "\n\nThe first line\n  and its second  \r\n\n \t \n\nsecond doc\n");
        File.WriteAllText(b, "third\n\nfourth\nstill fourth");
        var corpus = TextFileCorpus.FromFolder(_dir);
        Assert.That(corpus.Files, Is.EqualTo(new[] { a, b }));
        Assert.That(corpus.Documents().ToArray(), Is.EqualTo(new[] { "The first line and its second", "second doc", "third", "fourth still fourth" }));
        Assert.That(corpus.Progress, Is.EqualTo(1.0));
        Assert.That(new TextFileCorpus(new[] { b, a }).Documents().First(), Is.EqualTo("third"), "files in the order given");
        Assert.Throws<FileNotFoundException>(() => _ = new TextFileCorpus(new[] { Path.Combine(_dir, "missing.txt") }));
    }

    [Test]
    public void HugeBlocksAreCutAtLineBoundaries()
    {
        string path = Path.Combine(_dir, "big.txt");
        string line = new string('x', 1000);
        File.WriteAllLines(path, Enumerable.Repeat(line, 2 * TextFileCorpus.MaxDocumentChars / 1000));
        var docs = new TextFileCorpus(new[] { path }).Documents().ToList();
        Assert.That(docs, Has.Count.GreaterThan(1));
        Assert.That(docs, Has.All.Length.LessThanOrEqualTo(TextFileCorpus.MaxDocumentChars));
        Assert.That(docs.Sum(d => d.Replace(" ", "").Length), Is.EqualTo(2 * TextFileCorpus.MaxDocumentChars / 1000 * 1000));
    }

    [Test]
    public void FractionsAreDeterministicNestedAndOfTheRightSize()
    {
        ulong seed = (ulong)TestUtil.FreshSeed();
        const int n = 100_000;
        var all = Enumerable.Range(0, n).ToArray();
        foreach (double f in new[] { 0.1, 0.6 })
        {
            var kept = DataFraction.Apply(all, f, seed).ToArray();
            Assert.That(DataFraction.Apply(all, f, seed).ToArray(), Is.EqualTo(kept), "same documents every time");
            double sigma = Math.Sqrt(n * f * (1 - f));
            Assert.That(kept.Length, Is.InRange(n * f - 5 * sigma, n * f + 5 * sigma), $"fraction {f}");
            // the kept set is spread over the whole range, not a prefix
            Assert.That(kept.Count(i => i < n / 2), Is.InRange(n / 2 * f - 5 * sigma, n / 2 * f + 5 * sigma));
        }
        var small = DataFraction.Apply(all, 0.3, seed).ToHashSet();
        var large = DataFraction.Apply(all, 0.6, seed).ToHashSet();
        Assert.That(small.IsSubsetOf(large), "nested across fractions");
        var other = DataFraction.Apply(all, 0.3, seed + 1).ToHashSet();
        Assert.That(other.SetEquals(small), Is.False, "a different seed picks different documents");
        Assert.That(DataFraction.Apply(all, 1.0, seed).Count(), Is.EqualTo(n));
        Assert.Throws<ArgumentOutOfRangeException>(() => DataFraction.Apply(all, 0, seed).ToList());
        Assert.Throws<ArgumentOutOfRangeException>(() => DataFraction.Apply(all, 1.5, seed).ToList());
    }

    private static readonly string[] Docs =
    {
        "The quick brown fox jumps over the lazy dog.",
        "A dog is a domesticated descendant of the wolf.",
        "",
        "Entity: that which is perceived or known or inferred to have its own distinct existence.",
        "the the the dog dog fox",
        "Short.",
        "Another rather longer document about foxes, dogs, wolves and other animals of the genus Canis.",
    };

    [Test]
    public void ShardsRoundTripAcrossShardBoundaries()
    {
        var tok = CompactBpeTokenizer.Build(Docs);
        string folder = Path.Combine(_dir, "tokens");
        var progress = new Collect<ShardBuildProgress>();
        using var corpus = TokenCorpus.Build(new ListSource(Docs), tok, folder, new ShardBuildOptions { TokensPerShard = 20 }, progress);

        var expected = Docs.Where(d => d.Length > 0).Select(d => tok.Encode(d)).ToList();
        Assert.That(corpus.DocumentCount, Is.EqualTo(expected.Count), "empty documents are dropped");
        Assert.That(corpus.DocumentsSeen, Is.EqualTo(Docs.Length));
        Assert.That(corpus.TokenCount, Is.EqualTo(expected.Sum(e => e.Length)));
        Assert.That(corpus.Shards, Has.Count.GreaterThan(1));
        Assert.That(corpus.VocabSize, Is.EqualTo(tok.VocabSize));
        Assert.That(progress.Items[^1].DocumentsKept, Is.EqualTo(expected.Count));
        Assert.That(progress.Items[^1].Tokens, Is.EqualTo(corpus.TokenCount));

        var all = new int[corpus.TokenCount];
        corpus.CopyTokens(0, all);
        Assert.That(all, Is.EqualTo(expected.SelectMany(e => e).ToArray()));
        long pos = 0;
        for (int d = 0; d < expected.Count; d++)
        {
            Assert.That(corpus.DocumentStart(d), Is.EqualTo(pos), $"document {d}");
            Assert.That(corpus.DocumentOf(pos), Is.EqualTo(d));
            Assert.That(corpus.DocumentOf(pos + expected[d].Length - 1), Is.EqualTo(d));
            pos += expected[d].Length;
        }
        Assert.That(corpus.DocumentStart(expected.Count), Is.EqualTo(corpus.TokenCount));
        var window = new int[7];
        corpus.CopyTokens(corpus.Shards[0].TokenCount - 3, window);
        Assert.That(window, Is.EqualTo(all.AsSpan((int)corpus.Shards[0].TokenCount - 3, 7).ToArray()));
        Assert.That(corpus.Shards[1].Document(0).ToArray(), Is.EqualTo(expected[(int)corpus.Shards[0].DocumentCount]));
        Assert.That(Directory.GetDirectories(_dir), Is.EqualTo(new[] { folder }), "built atomically, no temporary left");

        using var reopened = TokenCorpus.Open(folder, tok);
        Assert.That(reopened.TokenCount, Is.EqualTo(corpus.TokenCount));
        var other = CompactBpeTokenizer.Build(Docs, vocabSize: 12);
        var e = Assert.Throws<InvalidDataException>(() => TokenCorpus.Open(folder, other).Dispose())!;
        Assert.That(e.Message, Does.Contain("different vocabulary"));
    }

    [Test]
    public void FractionBuildKeepsTheHashedDocuments()
    {
        ulong seed = (ulong)TestUtil.FreshSeed();
        var docs = Enumerable.Range(0, 500).Select(i => $"document number {i} of the test").ToList();
        var tok = CompactBpeTokenizer.Build(docs);
        using var corpus = TokenCorpus.Build(new ListSource(docs), tok, Path.Combine(_dir, "f"), new ShardBuildOptions { Fraction = 0.6, Seed = seed });
        var keptDocs = docs.Where((_, i) => DataFraction.Keep(i, 0.6, seed)).ToList();
        Assert.That(corpus.DocumentCount, Is.EqualTo(keptDocs.Count));
        Assert.That(corpus.DocumentsSeen, Is.EqualTo(500));
        Assert.That(corpus.Fraction, Is.EqualTo(0.6));
        Assert.That(corpus.Seed, Is.EqualTo(seed));
        for (int d = 0; d < keptDocs.Count; d++)
        {
            long s = corpus.DocumentStart(d), e = corpus.DocumentStart(d + 1);
            var ids = new int[e - s];
            corpus.CopyTokens(s, ids);
            Assert.That(tok.Decode(ids), Is.EqualTo(keptDocs[d]));
        }
    }

    [Test]
    public void DamagedShardsAreRejectedWithTheFileName()
    {
        var tok = CompactBpeTokenizer.Build(Docs);
        string folder = Path.Combine(_dir, "tokens");
        TokenCorpus.Build(new ListSource(Docs), tok, folder).Dispose();
        string shard = Path.Combine(folder, "shard-00000.bin");
        byte[] good = File.ReadAllBytes(shard);

        File.WriteAllBytes(shard, good[..^5]);
        var e = Assert.Throws<InvalidDataException>(() => TokenCorpus.Open(folder).Dispose())!;
        Assert.That(e.Message, Does.Contain("shard-00000.bin").And.Contain("truncated"));

        var badId = (byte[])good.Clone();
        BitConverter.GetBytes(tok.VocabSize + 3).CopyTo(badId, TokenShard.HeaderBytes + 4);
        File.WriteAllBytes(shard, badId);
        e = Assert.Throws<InvalidDataException>(() => TokenCorpus.Open(folder).Dispose())!;
        Assert.That(e.Message, Does.Contain("shard-00000.bin").And.Contain("outside the vocabulary"));

        var badMagic = (byte[])good.Clone();
        badMagic[0] = (byte)'X';
        File.WriteAllBytes(shard, badMagic);
        e = Assert.Throws<InvalidDataException>(() => TokenCorpus.Open(folder).Dispose())!;
        Assert.That(e.Message, Does.Contain("bad magic"));
    }

    [Test]
    public void PreparedDataIsBuiltOnceThenReused()
    {
        var docs = Enumerable.Range(0, 300).Select(i => $"document {i} says something about item {i % 17}").ToList();
        var source = new ListSource(docs);
        string cache = Path.Combine(_dir, "cache");
        ulong fingerprint;
        long tokens;
        using (var first = PretrainingData.Prepare(source, cache, vocabSize: 64, fraction: 0.5, seed: 3))
        {
            Assert.That(first.Reused, Is.False);
            Assert.That(first.Tokenizer.VocabSize, Is.EqualTo(64));
            fingerprint = first.Tokenizer.Fingerprint;
            tokens = first.Corpus.TokenCount;
        }
        using (var again = PretrainingData.Prepare(source, cache, vocabSize: 64, fraction: 0.5, seed: 3))
        {
            Assert.That(again.Reused, Is.True);
            Assert.That(again.Tokenizer.Fingerprint, Is.EqualTo(fingerprint));
            Assert.That(again.Corpus.TokenCount, Is.EqualTo(tokens));
        }
        using (var other = PretrainingData.Prepare(source, cache, vocabSize: 64, fraction: 1.0, seed: 3))
        {
            Assert.That(other.Reused, Is.False);
            Assert.That(other.Tokenizer.Fingerprint, Is.EqualTo(fingerprint), "one vocabulary for every fraction");
            Assert.That(other.Corpus.TokenCount, Is.GreaterThan(tokens));
        }
        // a damaged cache is rebuilt, not trusted
        string shard = Directory.GetFiles(Path.Combine(cache, "vocab-64"), "shard-00000.bin", SearchOption.AllDirectories)[0];
        File.WriteAllBytes(shard, new byte[10]);
        foreach (double f in new[] { 0.5, 1.0 })
        {
            using var rebuilt = PretrainingData.Prepare(source, cache, vocabSize: 64, fraction: f, seed: 3);
            using var check = TokenCorpus.Open(rebuilt.Corpus.Folder, rebuilt.Tokenizer);
            Assert.That(check.TokenCount, Is.EqualTo(rebuilt.Corpus.TokenCount));
        }
    }

    [Test]
    public void WordNetCorpusTokenizesIntoShards()
    {
        var source = new WordNetCorpus();
        var first = source.Documents().Take(3).ToList();
        Assert.That(first[0], Is.EqualTo("entity: that which is perceived or known or inferred to have its own distinct existence (living or nonliving)."));
        // A small deterministic slice keeps the test quick; the full corpus is 117,659 documents.
        var options = new ShardBuildOptions { Fraction = 0.02, Seed = 7 };
        var slice = DataFraction.Apply(source.Documents(), options.Fraction, options.Seed).ToList();
        var tok = CompactBpeTokenizer.Build(slice, vocabSize: 2048);
        Assert.That(tok.VocabSize, Is.EqualTo(2048));
        var progress = new Collect<ShardBuildProgress>();
        using var corpus = TokenCorpus.Build(source, tok, Path.Combine(_dir, "wn"), options, progress);
        Assert.That(corpus.DocumentsSeen, Is.EqualTo(WordNetCorpus.WordNet30Synsets));
        Assert.That(corpus.DocumentCount, Is.EqualTo(slice.Count));
        Assert.That(progress.Items[^1].SourceProgress, Is.EqualTo(1.0));
        var ids = new int[corpus.DocumentStart(1)];
        corpus.CopyTokens(0, ids);
        Assert.That(tok.Decode(ids), Is.EqualTo(tok.Decode(tok.Encode(slice[0]))));
    }
}
