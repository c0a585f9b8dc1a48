using NativeSparsity.Engine.Random;
using NativeSparsity.Models.Bert;

namespace NativeSparsity.Experiments.Training;

/// <summary>A long run of token ids (a corpus shard or a list of them), read by position.</summary>
public interface ITokenStream
{
    long Length { get; }
    void Read(long start, Span<int> destination);
}

/// <summary>An in-memory token stream (tests, small corpora).</summary>
public sealed class ArrayTokenStream(int[] tokens) : ITokenStream
{
    public long Length => tokens.Length;
    public void Read(long start, Span<int> destination) => tokens.AsSpan(checked((int)start), destination.Length).CopyTo(destination);
}

/// <summary>
/// Pre-training sequences as fixed windows of a token stream: window w is tokens
/// [w*(Seq-2), (w+1)*(Seq-2)) framed as [CLS] ... [SEP] (windows cross document boundaries, as in
/// RoBERTa's full-sentence packing). The last <c>heldOutWindows</c> windows are held out for
/// evaluation and probing. Training order is a Philox-seeded permutation per epoch, so the batch
/// of any step is a pure function of (seed, step): resuming needs only the step number.
/// </summary>
public sealed class TokenWindows
{
    private readonly ITokenStream _stream;
    private readonly ulong _seed;
    private int[]? _order;
    private long _orderEpoch = -1;

    public TokenWindows(ITokenStream stream, int seq, int clsId, int sepId, ulong seed, double heldOutFraction = 0.02, int minHeldOut = 8,
                        bool nextSentence = false)
    {
        NextSentence = nextSentence;
        if (nextSentence && seq < 5) throw new ArgumentException($"sequence length {seq} is too short for sentence pairs ([CLS] A [SEP] B [SEP])");
        if (seq < 3) throw new ArgumentException($"sequence length {seq} must be at least 3 ([CLS] token [SEP])");
        _stream = stream; _seed = seed;
        Seq = seq; ClsId = clsId; SepId = sepId;
        long windows = stream.Length / (seq - 2);
        HeldOut = (int)Math.Min(windows / 2, Math.Max(minHeldOut, (long)(windows * heldOutFraction)));
        TrainWindows = checked((int)(windows - HeldOut));
        if (TrainWindows < 1)
            throw new ArgumentException($"the corpus holds {stream.Length} tokens: too few for even two windows of {seq - 2}");
    }

    public int Seq { get; }
    public int ClsId { get; }
    public int SepId { get; }
    public int TrainWindows { get; }
    public int HeldOut { get; }

    /// <summary>
    /// Whether rows are sentence pairs for next-sentence prediction: [CLS] A [SEP] B [SEP] with A
    /// the first half of the window and B its continuation (label 0) or, with probability 1/2,
    /// the same span of another window (label 1), as BERT's NSP data; token types 0 then 1.
    /// </summary>
    public bool NextSentence { get; }

    /// <summary>Fills row <paramref name="row"/> of a batch with window <paramref name="window"/> (no padding).</summary>
    private void FillRow(BertBatch batch, int row, long window, ulong sample, bool heldOut)
    {
        if (NextSentence) { FillPairRow(batch, row, window, sample, heldOut); return; }
        int body = Seq - 2, off = row * Seq;
        batch.InputIds[off] = ClsId;
        _stream.Read(window * body, batch.InputIds.AsSpan(off + 1, body));
        batch.InputIds[off + Seq - 1] = SepId;
        batch.AttentionMask.AsSpan(off, Seq).Fill(1);
        batch.TokenTypeIds.AsSpan(off, Seq).Clear();
    }

    private void FillPairRow(BertBatch batch, int row, long window, ulong sample, bool heldOut)
    {
        int body = Seq - 2, off = row * Seq;
        int lenA = (Seq - 3 + 1) / 2, lenB = Seq - 3 - lenA;
        var ids = batch.InputIds;
        ids[off] = ClsId;
        _stream.Read(window * body, ids.AsSpan(off + 1, lenA));
        ids[off + 1 + lenA] = SepId;
        // Philox stream 2^60 (+1 for held-out rows) decides IsNext and picks the random window.
        ulong stream = (1UL << 60) + (heldOut ? 1UL : 0UL);
        bool notNext = Philox.Uniform(_seed, stream, 2 * sample) < 0.5f;
        long source = window;
        if (notNext)
        {
            long pool = heldOut ? HeldOut : TrainWindows, first = heldOut ? TrainWindows : 0;
            long pick = first + Philox.Bits(_seed, stream, 2 * sample + 1) % pool;
            source = pick == window ? first + (pick - first + 1) % pool : pick;
            if (source == window) notNext = false;   // a pool of one window has no other
        }
        _stream.Read(source * body + lenA, ids.AsSpan(off + 2 + lenA, lenB));
        ids[off + Seq - 1] = SepId;
        batch.AttentionMask.AsSpan(off, Seq).Fill(1);
        batch.TokenTypeIds.AsSpan(off, lenA + 2).Clear();
        batch.TokenTypeIds.AsSpan(off + lenA + 2, lenB + 1).Fill(1);
        batch.NextSentenceLabels![row] = notNext ? 1 : 0;
    }

    /// <summary>The training batch of (0-based) optimizer step <paramref name="step"/>, micro-batch <paramref name="micro"/>.</summary>
    public BertBatch TrainBatch(long step, int micro, int microBatches, int batchSize)
    {
        var batch = new BertBatch(batchSize, Seq);
        if (NextSentence) batch.NextSentenceLabels = new int[batchSize];
        for (int r = 0; r < batchSize; r++)
        {
            long sample = (step * microBatches + micro) * batchSize + r;
            long epoch = sample / TrainWindows;
            int indexInEpoch = (int)(sample % TrainWindows);
            FillRow(batch, r, Order(epoch)[indexInEpoch], (ulong)sample, heldOut: false);
        }
        return batch;
    }

    /// <summary>Held-out batch number <paramref name="index"/> (rows wrap around the held-out windows).</summary>
    public BertBatch HeldOutBatch(int index, int batchSize)
    {
        var batch = new BertBatch(batchSize, Seq);
        if (NextSentence) batch.NextSentenceLabels = new int[batchSize];
        for (int r = 0; r < batchSize; r++)
            FillRow(batch, r, TrainWindows + (long)((index * batchSize + r) % HeldOut), (ulong)(index * batchSize + r), heldOut: true);
        return batch;
    }

    private int[] Order(long epoch)
    {
        if (epoch == _orderEpoch) return _order!;
        var order = new int[TrainWindows];
        for (int i = 0; i < order.Length; i++) order[i] = i;
        // Fisher-Yates with Philox draws (stream = 2^61 + epoch), reproducible on any machine.
        ulong stream = (1UL << 61) + (ulong)epoch;
        for (int i = order.Length - 1; i > 0; i--)
        {
            ulong r = ((ulong)Philox.Bits(_seed, stream, 2UL * (ulong)i) << 32) | Philox.Bits(_seed, stream, 2UL * (ulong)i + 1);
            int j = (int)(r % (ulong)(i + 1));
            (order[i], order[j]) = (order[j], order[i]);
        }
        _order = order; _orderEpoch = epoch;
        return order;
    }
}
