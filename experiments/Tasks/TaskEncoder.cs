using NativeSparsity.Engine.Random;
using NativeSparsity.Models.Bert;
using NativeSparsity.Models.Text;

namespace NativeSparsity.Experiments.Tasks;

/// <summary>One example as token ids, before framing: text A's ids, text B's ids (null for single sentences).</summary>
public sealed record EncodedExample(int[] IdsA, int[]? IdsB, int Label, float Target);

/// <summary>What to do with a last batch that has fewer examples than the batch size.</summary>
public enum PartialBatch
{
    /// <summary>Keep the batch size and fill the rest with pad rows, flagged by <see cref="TaskBatch.RealRows"/>.</summary>
    Pad,
    /// <summary>Emit a smaller batch.</summary>
    Shrink,
    /// <summary>Leave the remaining examples out of this epoch (training only).</summary>
    Drop,
}

/// <summary>
/// A batch ready for the model. Rows [0, RealRows) are the examples ExampleIndices name, in order;
/// rows from RealRows on are padding ([CLS][SEP], label <see cref="TaskEncoder.IgnoreLabel"/>,
/// target 0) that metrics and the loss must ignore.
/// </summary>
public sealed record TaskBatch(BertBatch Batch, int RealRows, int[] ExampleIndices);

/// <summary>
/// Turns task examples into BertBatch rows: [CLS] A [SEP] (B [SEP]), token type 0 up to and
/// including the first [SEP] and 1 after it, truncated to <see cref="MaxSequenceLength"/> by
/// longest-first (Hugging Face's default: drop the last token of the longer text, of B on a tie),
/// padded with [PAD] and attention mask 0.
/// </summary>
public sealed class TaskEncoder
{
    /// <summary>Label of a pad row: the cross-entropy ignore index the heads use.</summary>
    public const int IgnoreLabel = -100;

    private readonly ITokenizer _tokenizer;

    /// <param name="padToLongest">Pad each batch to its longest row instead of to the maximum length
    /// (fewer wasted positions; varying sequence length per batch).</param>
    /// <param name="padMultiple">With <paramref name="padToLongest"/>, round the batch's length up to a
    /// multiple of this (capped at the maximum), so a run meets few distinct shapes.</param>
    public TaskEncoder(ITokenizer tokenizer, int maxSequenceLength, bool padToLongest = false, int padMultiple = 1)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        if (maxSequenceLength < 3)
            throw new ArgumentOutOfRangeException(nameof(maxSequenceLength), maxSequenceLength, "the maximum sequence length must be at least 3 ([CLS] A [SEP] with one token)");
        if (padMultiple < 1) throw new ArgumentOutOfRangeException(nameof(padMultiple), padMultiple, "the padding multiple must be positive");
        _tokenizer = tokenizer;
        MaxSequenceLength = maxSequenceLength;
        PadToLongest = padToLongest;
        PadMultiple = padMultiple;
    }

    public int MaxSequenceLength { get; }
    public bool PadToLongest { get; }
    public int PadMultiple { get; }
    public SpecialTokenIds Special => _tokenizer.Special;

    /// <summary>Tokenizes every example once (in parallel; the result does not depend on scheduling).</summary>
    public EncodedExample[] Encode(IReadOnlyList<TaskExample> examples)
    {
        var a = Tokenizers.EncodeBatch(_tokenizer, examples.Select(e => e.TextA).ToArray());
        var bTexts = examples.Where(e => e.TextB != null).Select(e => e.TextB!).ToArray();
        var b = Tokenizers.EncodeBatch(_tokenizer, bTexts);
        var result = new EncodedExample[examples.Count];
        int bi = 0;
        for (int i = 0; i < result.Length; i++)
        {
            var e = examples[i];
            result[i] = new EncodedExample(a[i], e.TextB != null ? b[bi++] : null, e.Label, e.Target);
        }
        return result;
    }

    /// <summary>How many tokens of A and of B survive longest-first truncation.</summary>
    public static (int KeepA, int KeepB) Truncate(int lengthA, int lengthB, bool isPair, int maxSequenceLength)
    {
        int budget = maxSequenceLength - (isPair ? 3 : 2);
        if (budget < 0) throw new ArgumentOutOfRangeException(nameof(maxSequenceLength), maxSequenceLength, "too short for the special tokens");
        int a = lengthA, b = isPair ? lengthB : 0;
        // Equivalent to removing one token at a time from the longer side (B on a tie), in O(1).
        int excess = a + b - budget;
        if (excess <= 0) return (a, b);
        int gap = Math.Abs(a - b);
        int fromLonger = Math.Min(excess, gap);
        if (a > b) a -= fromLonger; else b -= fromLonger;
        excess -= fromLonger;
        // Now equal: alternate, B first.
        b -= (excess + 1) / 2;
        a -= excess / 2;
        return (a, b);
    }

    /// <summary>Writes one framed row (ids, types, mask) into row <paramref name="row"/> of a batch.</summary>
    public void WriteRow(BertBatch batch, int row, EncodedExample example)
    {
        var (keepA, keepB) = Truncate(example.IdsA.Length, example.IdsB?.Length ?? 0, example.IdsB != null, Math.Min(MaxSequenceLength, batch.Seq));
        int length = RowLength(keepA, keepB, example.IdsB != null);
        if (length > batch.Seq) throw new ArgumentException($"row of {length} tokens does not fit the batch's sequence length {batch.Seq}");
        var ids = batch.InputIds.AsSpan(row * batch.Seq, batch.Seq);
        var types = batch.TokenTypeIds.AsSpan(row * batch.Seq, batch.Seq);
        var mask = batch.AttentionMask.AsSpan(row * batch.Seq, batch.Seq);
        int t = 0;
        ids[t++] = Special.Cls;
        example.IdsA.AsSpan(0, keepA).CopyTo(ids[t..]);
        t += keepA;
        ids[t++] = Special.Sep;
        int firstSegmentEnd = t;
        if (example.IdsB != null)
        {
            example.IdsB.AsSpan(0, keepB).CopyTo(ids[t..]);
            t += keepB;
            ids[t++] = Special.Sep;
        }
        types[..firstSegmentEnd].Fill(0);
        types[firstSegmentEnd..t].Fill(1);
        mask[..t].Fill(1);
        ids[t..].Fill(Special.Pad);
        types[t..].Fill(0);
        mask[t..].Fill(0);
    }

    private static int RowLength(int keepA, int keepB, bool isPair) => keepA + 2 + (isPair ? keepB + 1 : 0);

    /// <summary>Framed length of an example after truncation.</summary>
    public int Length(EncodedExample example)
    {
        var (a, b) = Truncate(example.IdsA.Length, example.IdsB?.Length ?? 0, example.IdsB != null, MaxSequenceLength);
        return RowLength(a, b, example.IdsB != null);
    }

    /// <summary>
    /// A batch of the examples named by <paramref name="indices"/>; with <paramref name="batchSize"/>
    /// larger than the count, the rest are pad rows. Labels go to BertBatch.Labels, or to
    /// RegressionTargets when <paramref name="regression"/>.
    /// </summary>
    public TaskBatch Build(IReadOnlyList<EncodedExample> examples, ReadOnlySpan<int> indices, int batchSize, bool regression)
    {
        if (indices.Length == 0) throw new ArgumentException("a batch needs at least one example");
        if (batchSize < indices.Length) throw new ArgumentException($"{indices.Length} examples do not fit a batch of {batchSize}");
        int seq = MaxSequenceLength;
        if (PadToLongest)
        {
            seq = 2;
            foreach (int i in indices) seq = Math.Max(seq, Length(examples[i]));
            seq = Math.Min(MaxSequenceLength, (seq + PadMultiple - 1) / PadMultiple * PadMultiple);
        }
        var batch = new BertBatch(batchSize, seq);
        var labels = new int[batchSize];
        var targets = new float[batchSize];
        for (int r = 0; r < indices.Length; r++)
        {
            var e = examples[indices[r]];
            WriteRow(batch, r, e);
            labels[r] = e.Label;
            targets[r] = e.Target;
        }
        for (int r = indices.Length; r < batchSize; r++)
        {
            // A pad row keeps two real tokens so no attention row is fully masked.
            var row = batch.InputIds.AsSpan(r * seq, seq);
            row.Fill(Special.Pad);
            row[0] = Special.Cls;
            row[1] = Special.Sep;
            batch.AttentionMask[r * seq] = 1;
            batch.AttentionMask[r * seq + 1] = 1;
            labels[r] = IgnoreLabel;
        }
        if (regression) batch.RegressionTargets = targets;
        else batch.Labels = labels;
        return new TaskBatch(batch, indices.Length, indices.ToArray());
    }

    /// <summary>
    /// The batches of one epoch. With <paramref name="shuffle"/> the order is a Fisher-Yates
    /// permutation drawn from Philox(seed, stream = epoch), so it is a pure function of (seed, epoch);
    /// without it examples stay in order (evaluation). With <paramref name="groupByLength"/> see
    /// <see cref="LengthGroupedOrder"/>.
    /// </summary>
    public IEnumerable<TaskBatch> Batches(IReadOnlyList<EncodedExample> examples, int batchSize, bool regression,
                                          bool shuffle, ulong seed = 0, long epoch = 0, PartialBatch partial = PartialBatch.Pad,
                                          bool groupByLength = false)
    {
        if (batchSize < 1) throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, "the batch size must be positive");
        if (groupByLength)
        {
            foreach (var rows in LengthGroupedOrder(examples, batchSize, shuffle, seed, epoch))
            {
                if (rows.Length < batchSize && partial == PartialBatch.Drop) continue;
                int size = rows.Length < batchSize && partial == PartialBatch.Shrink ? rows.Length : batchSize;
                yield return Build(examples, rows, size, regression);
            }
            yield break;
        }
        int[] order = shuffle ? Permutation(examples.Count, seed, epoch) : Enumerable.Range(0, examples.Count).ToArray();
        for (int start = 0; start < order.Length; start += batchSize)
        {
            int count = Math.Min(batchSize, order.Length - start);
            if (count < batchSize && partial == PartialBatch.Drop) yield break;
            int size = count < batchSize && partial == PartialBatch.Shrink ? count : batchSize;
            yield return Build(examples, order.AsSpan(start, count), size, regression);
        }
    }

    /// <summary>Examples per length-sorted group, in batches: large enough that most batches hold rows of one
    /// length, small enough that every batch still mixes examples from all over the shuffled order.</summary>
    public const int LengthGroupBatches = 50;

    /// <summary>
    /// Batches of rows of similar length, so that padding to each batch's longest row wastes little
    /// (the "group by length" sampler of Hugging Face's Trainer, made deterministic): the epoch's
    /// permutation is cut into groups of <see cref="LengthGroupBatches"/> batches, each group is
    /// sorted by framed length (longest first, ties in permutation order) and cut into batches, and
    /// the batch order is then permuted again from Philox(seed, stream = -1 - epoch). At most one
    /// batch, the last of the last group, is partial. Without <paramref name="shuffle"/> the whole
    /// split is one group in index order (evaluation: the metrics do not depend on the order).
    /// </summary>
    public List<int[]> LengthGroupedOrder(IReadOnlyList<EncodedExample> examples, int batchSize, bool shuffle, ulong seed, long epoch)
    {
        int n = examples.Count;
        int[] order = shuffle ? Permutation(n, seed, epoch) : Enumerable.Range(0, n).ToArray();
        var lengths = new int[n];
        for (int i = 0; i < n; i++) lengths[i] = Length(examples[i]);
        int group = shuffle ? batchSize * LengthGroupBatches : Math.Max(n, 1);
        var batches = new List<int[]>();
        for (int start = 0; start < n; start += group)
        {
            int count = Math.Min(group, n - start);
            // Stable: OrderBy keeps permutation order among equal lengths.
            var sorted = order.Skip(start).Take(count).OrderByDescending(i => lengths[i]).ToArray();
            for (int b = 0; b < count; b += batchSize)
                batches.Add(sorted[b..Math.Min(count, b + batchSize)]);
        }
        if (!shuffle) return batches;
        var batchOrder = Permutation(batches.Count, seed, -1 - epoch);
        return batchOrder.Select(i => batches[i]).ToList();
    }

    /// <summary>A Philox-driven Fisher-Yates permutation of 0..n-1 for (seed, epoch).</summary>
    public static int[] Permutation(int n, ulong seed, long epoch)
    {
        var order = new int[n];
        for (int i = 0; i < n; i++) order[i] = i;
        for (int i = n - 1; i > 0; i--)
        {
            // Lemire's multiply-shift maps 32 random bits to [0, i] (bias below 2^-32 * n).
            uint bits = Philox.Bits(seed, (ulong)epoch, (ulong)(n - 1 - i));
            int j = (int)(((ulong)bits * (ulong)(i + 1)) >> 32);
            (order[i], order[j]) = (order[j], order[i]);
        }
        return order;
    }
}
