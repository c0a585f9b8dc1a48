using NativeSparsity.Experiments.Tasks;
using NativeSparsity.Models.Text;
using NativeSparsity.Tests.Engine;
using NUnit.Framework;

namespace NativeSparsity.Tests.Tasks;

/// <summary>Maps each whitespace-separated number to itself, so expected ids are readable.</summary>
internal sealed class NumberTokenizer : ITokenizer
{
    public string Kind => "numbers";
    public int VocabSize => 1000;
    public SpecialTokenIds Special { get; } = new(Pad: 0, Cls: 1, Sep: 2, Mask: 3, Unk: 4);
    public ulong Fingerprint => 0;
    public void Encode(string text, List<int> output) =>
        output.AddRange(text.Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(int.Parse));
    public int[] Encode(string text) { var l = new List<int>(); Encode(text, l); return l.ToArray(); }
    public string Decode(ReadOnlySpan<int> ids, bool skipSpecial = false) => string.Join(' ', ids.ToArray());
    public string TokenText(int id) => id.ToString();
    public void Save(string folder) => throw new NotSupportedException();

    public static string Words(int from, int count) => string.Join(' ', Enumerable.Range(from, count));
}

[TestFixture]
public class TaskEncoderTests
{
    private static readonly NumberTokenizer Tok = new();

    private static int[] Row(int[] data, int row, int seq) => data.AsSpan(row * seq, seq).ToArray();

    [Test]
    public void SingleSentenceIsFramedAndPadded()
    {
        var enc = new TaskEncoder(Tok, 8);
        var ex = enc.Encode(new[] { new TaskExample("11 12 13", null, 1) });
        var b = enc.Build(ex, new[] { 0 }, 1, regression: false).Batch;
        Assert.That(b.InputIds, Is.EqualTo(new[] { 1, 11, 12, 13, 2, 0, 0, 0 }));
        Assert.That(b.TokenTypeIds, Is.EqualTo(new int[8]));
        Assert.That(b.AttentionMask, Is.EqualTo(new[] { 1, 1, 1, 1, 1, 0, 0, 0 }));
        Assert.That(b.Labels, Is.EqualTo(new[] { 1 }));
        Assert.That(b.RegressionTargets, Is.Null);
    }

    [Test]
    public void PairGetsTokenTypesAfterTheFirstSep()
    {
        var enc = new TaskEncoder(Tok, 10);
        var ex = enc.Encode(new[] { new TaskExample("11 12", "21 22 23", 0, 3.5f) });
        var b = enc.Build(ex, new[] { 0 }, 1, regression: true).Batch;
        Assert.That(b.InputIds, Is.EqualTo(new[] { 1, 11, 12, 2, 21, 22, 23, 2, 0, 0 }));
        Assert.That(b.TokenTypeIds, Is.EqualTo(new[] { 0, 0, 0, 0, 1, 1, 1, 1, 0, 0 }));
        Assert.That(b.AttentionMask, Is.EqualTo(new[] { 1, 1, 1, 1, 1, 1, 1, 1, 0, 0 }));
        Assert.That(b.RegressionTargets, Is.EqualTo(new[] { 3.5f }));
        Assert.That(b.Labels, Is.Null);
    }

    [Test]
    public void TruncationIsLongestFirst()
    {
        var enc = new TaskEncoder(Tok, 8);
        // A has 6, B 2; budget 8 - 3 = 5: A loses 3 (the longer side) and keeps its first 3 tokens.
        var ex = enc.Encode(new[] { new TaskExample(NumberTokenizer.Words(11, 6), "21 22", 0), new TaskExample(NumberTokenizer.Words(11, 10), null, 0) });
        var b = enc.Build(ex, new[] { 0, 1 }, 2, regression: false).Batch;
        Assert.That(Row(b.InputIds, 0, 8), Is.EqualTo(new[] { 1, 11, 12, 13, 2, 21, 22, 2 }));
        Assert.That(Row(b.TokenTypeIds, 0, 8), Is.EqualTo(new[] { 0, 0, 0, 0, 0, 1, 1, 1 }));
        Assert.That(Row(b.AttentionMask, 0, 8), Is.EqualTo(Enumerable.Repeat(1, 8)));
        Assert.That(Row(b.InputIds, 1, 8), Is.EqualTo(new[] { 1, 11, 12, 13, 14, 15, 16, 2 }));
        // A 5, B 4, budget 6: A drops to 4, then B then A alternate: (3, 3).
        Assert.That(TaskEncoder.Truncate(5, 4, true, 9), Is.EqualTo((3, 3)));
    }

    [Test]
    public void TruncateMatchesTheTokenByTokenRule()
    {
        int seed = TestUtil.FreshSeed();
        var rng = new System.Random(seed);
        for (int trial = 0; trial < 2000; trial++)
        {
            int a = rng.Next(0, 40), b = rng.Next(0, 40), max = rng.Next(3, 50);
            bool pair = rng.Next(2) == 0;
            if (!pair) b = 0;
            // Hugging Face's longest_first: drop one token from the longer text (B on a tie) until it fits.
            int ra = a, rb = b, budget = max - (pair ? 3 : 2);
            while (ra + rb > budget) { if (ra > rb) ra--; else rb--; }
            Assert.That(TaskEncoder.Truncate(a, b, pair, max), Is.EqualTo((ra, rb)), $"seed {seed}: a {a} b {b} max {max} pair {pair}");
        }
    }

    [Test]
    public void LastPartialBatchIsPaddedAndFlagged()
    {
        var enc = new TaskEncoder(Tok, 6);
        var examples = Enumerable.Range(0, 5).Select(i => new TaskExample($"{10 + i}", null, i % 2)).ToList();
        var ex = enc.Encode(examples);
        var batches = enc.Batches(ex, 3, regression: false, shuffle: false).ToList();
        Assert.That(batches.Select(b => b.RealRows), Is.EqualTo(new[] { 3, 2 }));
        var last = batches[1];
        Assert.That(last.Batch.Batch, Is.EqualTo(3));
        Assert.That(last.ExampleIndices, Is.EqualTo(new[] { 3, 4 }));
        Assert.That(last.Batch.Labels, Is.EqualTo(new[] { 1, 0, TaskEncoder.IgnoreLabel }));
        Assert.That(Row(last.Batch.InputIds, 2, 6), Is.EqualTo(new[] { 1, 2, 0, 0, 0, 0 }));
        Assert.That(Row(last.Batch.AttentionMask, 2, 6), Is.EqualTo(new[] { 1, 1, 0, 0, 0, 0 }));

        var shrunk = enc.Batches(ex, 3, false, false, partial: PartialBatch.Shrink).ToList();
        Assert.That(shrunk.Select(b => b.Batch.Batch), Is.EqualTo(new[] { 3, 2 }));
        var dropped = enc.Batches(ex, 3, false, false, partial: PartialBatch.Drop).ToList();
        Assert.That(dropped.Select(b => b.RealRows), Is.EqualTo(new[] { 3 }));
        var regression = enc.Batches(ex, 3, regression: true, shuffle: false).Last();
        Assert.That(regression.Batch.RegressionTargets, Is.EqualTo(new[] { 0f, 0f, 0f }));
    }

    [Test]
    public void ShuffleIsAPermutationDeterminedBySeedAndEpoch()
    {
        ulong seed = (ulong)TestUtil.FreshSeed();
        var enc = new TaskEncoder(Tok, 4);
        var ex = enc.Encode(Enumerable.Range(0, 23).Select(i => new TaskExample($"{10 + i}", null, 0)).ToList());
        int[] Order(ulong s, long epoch) => enc.Batches(ex, 5, false, shuffle: true, s, epoch).SelectMany(b => b.ExampleIndices).ToArray();
        var e0 = Order(seed, 0);
        Assert.That(e0.OrderBy(i => i), Is.EqualTo(Enumerable.Range(0, 23)), $"seed {seed}: every example once");
        Assert.That(Order(seed, 0), Is.EqualTo(e0));
        Assert.That(Order(seed, 1), Is.Not.EqualTo(e0), $"seed {seed}: a new epoch reshuffles");
        Assert.That(Order(seed + 1, 0), Is.Not.EqualTo(e0));
        // The rows hold the examples the indices name.
        var first = enc.Batches(ex, 5, false, shuffle: true, seed, 0).First();
        for (int r = 0; r < 5; r++) Assert.That(first.Batch.InputIds[r * 4 + 1], Is.EqualTo(10 + first.ExampleIndices[r]));
        // Positions are uniform enough: over many seeds each example lands first about equally often.
        var counts = new int[23];
        for (ulong s = 0; s < 2300; s++) counts[TaskEncoder.Permutation(23, seed + s, 0)[0]]++;
        Assert.That(counts.Min(), Is.GreaterThan(50), $"seed {seed}: {string.Join(",", counts)}");
        Assert.That(counts.Max(), Is.LessThan(150), $"seed {seed}: {string.Join(",", counts)}");
    }

    [Test]
    public void PadToLongestUsesTheLongestRowOfTheBatch()
    {
        var enc = new TaskEncoder(Tok, 16, padToLongest: true);
        var ex = enc.Encode(new[] { new TaskExample("11", "21", 0), new TaskExample("11 12 13", null, 1) });
        var b = enc.Build(ex, new[] { 0, 1 }, 2, false).Batch;
        Assert.That(b.Seq, Is.EqualTo(5));
        Assert.That(b.InputIds, Is.EqualTo(new[] { 1, 11, 2, 21, 2, 1, 11, 12, 13, 2 }));
        Assert.That(b.TokenTypeIds, Is.EqualTo(new[] { 0, 0, 0, 1, 1, 0, 0, 0, 0, 0 }));
    }

    [Test]
    public void PadMultipleRoundsTheBatchLengthUpToTheCap()
    {
        var enc = new TaskEncoder(Tok, 7, padToLongest: true, padMultiple: 4);
        var ex = enc.Encode(new[] { new TaskExample("11", null, 0), new TaskExample("11 12 13", null, 1), new TaskExample("11 12 13 14 15 16", null, 1) });
        Assert.That(enc.Build(ex, new[] { 0 }, 1, false).Batch.Seq, Is.EqualTo(4), "3 tokens round up to 4");
        Assert.That(enc.Build(ex, new[] { 0, 1 }, 2, false).Batch.Seq, Is.EqualTo(7), "5 tokens round up to 8, capped at 7");
        var b = enc.Build(ex, new[] { 1 }, 1, false).Batch;
        Assert.That(b.AttentionMask, Is.EqualTo(new[] { 1, 1, 1, 1, 1, 0, 0 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new TaskEncoder(Tok, 7, true, padMultiple: 0));
    }

    [Test]
    public void LengthGroupingCoversEveryExampleOnceInBatchesOfSimilarLength()
    {
        ulong seed = (ulong)TestUtil.FreshSeed();
        var rng = new Random((int)(seed % int.MaxValue));
        int n = 1000 + rng.Next(500), batch = 3 + rng.Next(5);
        var enc = new TaskEncoder(Tok, 40, padToLongest: true);
        var ex = enc.Encode(Enumerable.Range(0, n).Select(i => new TaskExample(NumberTokenizer.Words(10, 1 + rng.Next(30)), null, i % 3)).ToList());
        var epoch0 = enc.LengthGroupedOrder(ex, batch, shuffle: true, seed, 0);
        Assert.That(epoch0.SelectMany(b => b).OrderBy(i => i), Is.EqualTo(Enumerable.Range(0, n)), $"seed {seed}: every example once");
        Assert.That(epoch0.Count(b => b.Length != batch), Is.LessThanOrEqualTo(1), $"seed {seed}: at most one partial batch");
        Assert.That(epoch0.Count, Is.EqualTo((n + batch - 1) / batch), "as many steps as plain batching");
        Assert.That(enc.LengthGroupedOrder(ex, batch, true, seed, 0).SelectMany(b => b), Is.EqualTo(epoch0.SelectMany(b => b)), "a pure function of (seed, epoch)");
        Assert.That(enc.LengthGroupedOrder(ex, batch, true, seed, 1).SelectMany(b => b), Is.Not.EqualTo(epoch0.SelectMany(b => b)), "a new epoch regroups");
        // Padding: within a batch lengths are sorted and close, so the batches waste far less than random ones.
        int Waste(IEnumerable<int[]> batches) => batches.Sum(b => b.Length * b.Max(i => enc.Length(ex[i])) - b.Sum(i => enc.Length(ex[i])));
        foreach (var b in epoch0) Assert.That(b.Select(i => enc.Length(ex[i])), Is.Ordered.Descending);
        var random = enc.Batches(ex, batch, false, shuffle: true, seed, 0).Select(tb => tb.ExampleIndices);
        Assert.That(Waste(epoch0), Is.LessThan(Waste(random) / 4), $"seed {seed}");
        // The batch order is shuffled: long and short batches are mixed, not sorted through the epoch.
        var maxima = epoch0.Select(b => b.Max(i => enc.Length(ex[i]))).ToList();
        Assert.That(maxima, Is.Not.Ordered.Descending);
        Assert.That(maxima, Is.Not.Ordered.Ascending);
        // Batches carry the examples they name, padded to their own longest row.
        var built = enc.Batches(ex, batch, false, shuffle: true, seed, 0, PartialBatch.Shrink, groupByLength: true).ToList();
        Assert.That(built.Select(tb => tb.ExampleIndices), Is.EqualTo(epoch0));
        Assert.That(built.Select(tb => tb.Batch.Seq), Is.EqualTo(maxima));
        // Evaluation order (no shuffle): one group over the whole split, sorted longest first.
        var eval = enc.LengthGroupedOrder(ex, batch, shuffle: false, 0, 0).SelectMany(b => b).ToArray();
        Assert.That(eval.Select(i => enc.Length(ex[i])), Is.Ordered.Descending);
        Assert.That(eval.OrderBy(i => i), Is.EqualTo(Enumerable.Range(0, n)));
    }

    [Test]
    public void WorksWithAWordPieceTokenizer()
    {
        var vocab = new[] { "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "dog", "bark", "##s", "cat" };
        var tok = WordPieceTokenizer.FromVocabulary(vocab);
        var enc = new TaskEncoder(tok, 9);
        var ex = enc.Encode(new[] { new TaskExample("The dog barks", "the cat", 1) });
        var b = enc.Build(ex, new[] { 0 }, 1, false).Batch;
        Assert.That(b.InputIds, Is.EqualTo(new[] { 2, 5, 6, 7, 8, 3, 5, 9, 3 }));
        Assert.That(b.TokenTypeIds, Is.EqualTo(new[] { 0, 0, 0, 0, 0, 0, 1, 1, 1 }));
        var shortEnc = new TaskEncoder(tok, 7);
        var shortB = shortEnc.Build(shortEnc.Encode(new[] { new TaskExample("The dog barks", "the cat", 1) }), new[] { 0 }, 1, false).Batch;
        Assert.That(shortB.InputIds, Is.EqualTo(new[] { 2, 5, 6, 3, 5, 9, 3 }));
    }

    [Test]
    public void BadOptionsAreRejected()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new TaskEncoder(Tok, 2));
        var enc = new TaskEncoder(Tok, 8);
        var ex = enc.Encode(new[] { new TaskExample("11", null, 0), new TaskExample("12", null, 0) });
        Assert.Throws<ArgumentException>(() => enc.Build(ex, new[] { 0, 1 }, 1, false));
        Assert.Throws<ArgumentOutOfRangeException>(() => enc.Batches(ex, 0, false, false).ToList());
    }
}
