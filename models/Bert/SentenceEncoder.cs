using NativeSparsity.Engine.Backends;
using NativeSparsity.Models.Text;

namespace NativeSparsity.Models.Bert;

/// <summary>One text's encoding: its ids ([CLS] ... [SEP]), last hidden states [ids, hidden] and pooled, L2-normalised embedding.</summary>
public sealed record SentenceEncoding(string Text, int[] InputIds, float[] LastHiddenState, float[] Embedding);

/// <summary>
/// Sentence embeddings as sentence-transformers computes them: [CLS] text [SEP] truncated to the
/// maximum length, batches padded to their longest text, the encoder's last hidden states pooled
/// (<see cref="SentencePooling"/>) and L2-normalised. Dropout is off.
/// </summary>
public sealed class SentenceEncoder
{
    private readonly BertParameters _parameters;
    private readonly ITokenizer _tokenizer;
    private readonly SparseEncoderWeights? _sparse;

    /// <summary>With <paramref name="sparse"/>, every batch runs its projections through the sparse kernels (built once, shared by every batch shape).</summary>
    public SentenceEncoder(BertParameters parameters, ITokenizer tokenizer, PoolingMode pooling, int maxSequenceLength, SparseEncoderWeights? sparse = null)
    {
        if (maxSequenceLength < 2 || maxSequenceLength > parameters.Config.MaxPositionEmbeddings)
            throw new ArgumentException($"max sequence length {maxSequenceLength} is outside [2, {parameters.Config.MaxPositionEmbeddings}]");
        _parameters = parameters;
        _tokenizer = tokenizer;
        _sparse = sparse;
        Pooling = pooling;
        MaxSequenceLength = maxSequenceLength;
    }

    public PoolingMode Pooling { get; }
    public int MaxSequenceLength { get; }

    /// <summary>[CLS] + the text's ids (cut to fit) + [SEP].</summary>
    public int[] Frame(string text)
    {
        var ids = _tokenizer.Encode(text);
        int keep = Math.Min(ids.Length, MaxSequenceLength - 2);
        var framed = new int[keep + 2];
        framed[0] = _tokenizer.Special.Cls;
        Array.Copy(ids, 0, framed, 1, keep);
        framed[^1] = _tokenizer.Special.Sep;
        return framed;
    }

    /// <summary>Encodes the texts in batches of <paramref name="batchSize"/>, in order.</summary>
    public IEnumerable<SentenceEncoding> Encode(IReadOnlyList<string> texts, int batchSize = 32)
    {
        if (batchSize < 1) throw new ArgumentException($"batch size must be positive, got {batchSize}");
        for (int start = 0; start < texts.Count; start += batchSize)
        {
            var chunk = texts.Skip(start).Take(batchSize).ToList();
            foreach (var e in EncodeBatch(chunk.Select(t => (t, Frame(t))).ToList())) yield return e;
        }
    }

    /// <summary>One padded batch of framed id sequences (the golden test feeds ids directly).</summary>
    public IReadOnlyList<SentenceEncoding> EncodeBatch(IReadOnlyList<(string Text, int[] Ids)> items)
    {
        int batch = items.Count, seq = items.Max(i => i.Ids.Length), c = _parameters.Config.HiddenSize;
        var input = new BertBatch(batch, seq);
        for (int b = 0; b < batch; b++)
        {
            var ids = items[b].Ids;
            ids.CopyTo(input.InputIds, b * seq);
            for (int t = ids.Length; t < seq; t++) input.InputIds[b * seq + t] = _tokenizer.Special.Pad;
            Array.Fill(input.AttentionMask, 1, b * seq, ids.Length);
        }
        using var model = new BertModel(_parameters, batch, seq, sparse: _sparse);
        model.Forward(input, DropoutPlan.Off);
        var hidden = new float[batch * seq * c];
        _parameters.Backend.CopyToHost<float>(model.LastHidden, hidden);
        var results = new List<SentenceEncoding>(batch);
        for (int b = 0; b < batch; b++)
        {
            int n = items[b].Ids.Length;
            var rows = hidden.AsSpan(b * seq * c, seq * c);
            var embedding = new float[c];
            SentencePooling.Pool(rows, input.AttentionMask.AsSpan(b * seq, seq), c, Pooling, embedding);
            results.Add(new SentenceEncoding(items[b].Text, items[b].Ids, rows[..(n * c)].ToArray(), embedding));
        }
        return results;
    }
}
