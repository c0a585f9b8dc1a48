using NativeSparsity.Engine.Backends;
using NativeSparsity.Engine.Tensors;
using NativeSparsity.Models.Transformer;

namespace NativeSparsity.Models.Bert;

/// <summary>
/// A BERT with its heads, for one batch shape [Batch, Seq], over preallocated activations.
/// Forward then Backward; parameter gradients accumulate in <see cref="BertParameters.Grads"/>
/// (zero them per optimizer step), so gradient accumulation is several Forward/Backward pairs.
/// </summary>
public sealed class BertModel : IDisposable
{
    private readonly IBackend _be;
    private readonly TensorArena _arena;
    private readonly BertEmbeddings _embeddings;
    private readonly TransformerEncoderLayer[] _layers;
    private readonly Tensor[] _hidden;
    private readonly Tensor _ids, _types, _positions, _keyMask, _dA, _dB;
    private readonly BertMaskedLmHead? _mlm;
    private readonly BertClassifierHead? _classifier, _nextSentence;
    private bool _haveClassTargets, _haveNspTargets;
    private DropoutPlan _dropout = DropoutPlan.Off;

    /// <summary>
    /// With <paramref name="sparseFrom"/> set (CPU backend), every encoder projection at least that
    /// sparse runs its forward through the sparse kernel on a CSR snapshot of its weight: an
    /// inference model (Backward then throws; the weights must not change).
    /// With <paramref name="sparse"/>, its projections run through the sparse kernels as it says
    /// (built once and shared by models of several shapes; the caller refreshes training copies).
    /// </summary>
    public BertModel(BertParameters parameters, int batch, int seq, double? sparseFrom = null, SparseEncoderWeights? sparse = null)
    {
        if (sparseFrom != null && sparse != null) throw new ArgumentException("give sparseFrom or sparse weights, not both");
        if (sparseFrom is { } from) sparse = SparseEncoderWeights.ForInference(parameters, from);
        var cfg = parameters.Config;
        if (seq > cfg.MaxPositionEmbeddings)
            throw new ArgumentException($"sequence length {seq} exceeds max_position_embeddings {cfg.MaxPositionEmbeddings}");
        Parameters = parameters;
        _be = parameters.Backend;
        _arena = new TensorArena(_be);
        Batch = batch; Seq = seq;
        int rows = batch * seq, c = cfg.HiddenSize;
        _ids = _arena.Allocate(DType.I32, rows); _types = _arena.Allocate(DType.I32, rows);
        _positions = _arena.Allocate(DType.I32, rows); _keyMask = _arena.Allocate(DType.F32, batch, seq);
        _be.CopyFromHost<int>(Enumerable.Range(0, rows).Select(i => i % seq).ToArray(), _positions);
        _hidden = new Tensor[cfg.NumHiddenLayers + 1];
        for (int i = 0; i < _hidden.Length; i++) _hidden[i] = _arena.Allocate(DType.F32, rows, c);
        _embeddings = new BertEmbeddings(_be, parameters, batch, seq, _hidden[0], _arena);
        var shape = new TransformerLayerShape(batch, seq, c, cfg.NumAttentionHeads, cfg.IntermediateSize, cfg.LayerNormEps,
                                              AttentionDropout: cfg.AttentionProbsDropoutProb > 0);
        var scratch = new TransformerLayerScratch(_arena, shape);
        _layers = new TransformerEncoderLayer[cfg.NumHiddenLayers];
        for (int i = 0; i < _layers.Length; i++)
        {
            var weights = sparse != null ? sparse.Apply(i, LayerWeights(parameters, i)) : LayerWeights(parameters, i);
            SparseProjections += new[] { weights.Qkv, weights.AttentionOutput, weights.Intermediate, weights.Output }.Count(l => l.Sparse != null);
            _layers[i] = new TransformerEncoderLayer(_be, weights, LayerNormPlacement.Post, i, shape,
                                                     _hidden[i], _hidden[i + 1], scratch, _arena);
        }
        _dA = _arena.Allocate(DType.F32, rows, c); _dB = _arena.Allocate(DType.F32, rows, c);
        if (parameters.Layout.Heads.MaskedLm) _mlm = new BertMaskedLmHead(_be, parameters, rows, _arena);
        if (parameters.Layout.Heads.ClassifierLabels > 0) _classifier = new BertClassifierHead(_be, parameters, batch, seq, _arena);
        if (parameters.Layout.Heads.NextSentence)
            _nextSentence = new BertClassifierHead(_be, parameters, batch, seq, _arena, "cls.seq_relationship", 2,
                                                   b => b.NextSentenceLabels, dropout: false);
    }

    /// <summary>Layer <paramref name="layer"/>'s weights under BERT's names (post-LN: attention.output.LayerNorm, then output.LayerNorm).</summary>
    internal static TransformerLayerWeights LayerWeights(BertParameters p, int layer)
    {
        string pre = BertParameterLayout.LayerPrefix(layer);
        var qkv = TransformerLayerWeights.FusedQkv(p.Values, p.Grads, p.Layout[pre + "attention.self.query.weight"].Offset,
                                                   p.Layout[pre + "attention.self.query.bias"].Offset, p.Config.HiddenSize);
        return new TransformerLayerWeights(qkv, p.Linear(pre + "attention.output.dense"), p.Linear(pre + "intermediate.dense"),
                                           p.Linear(pre + "output.dense"), p.LayerNorm(pre + "attention.output.LayerNorm"),
                                           p.LayerNorm(pre + "output.LayerNorm"));
    }

    public BertParameters Parameters { get; }

    /// <summary>Encoder projections (fused QKV, attention output, intermediate, output per layer) that run through the sparse kernel.</summary>
    public int SparseProjections { get; }

    public BertConfig Config => Parameters.Config;
    public int Batch { get; }
    public int Seq { get; }

    /// <summary>Final hidden states [Batch*Seq, hidden] of the last forward.</summary>
    public Tensor LastHidden => _hidden[^1];

    /// <summary>MLM logits [masked positions, vocab] of the last forward (until Backward reuses the buffer).</summary>
    public Tensor MaskedLmLogits => _mlm?.Logits ?? throw new InvalidOperationException("this model has no MLM head");

    /// <summary>Per-position MLM losses of the last forward.</summary>
    public Tensor MaskedLmLosses => _mlm?.Losses ?? throw new InvalidOperationException("this model has no MLM head");

    /// <summary>Next-sentence logits [Batch, 2] of the last forward.</summary>
    public Tensor NextSentenceLogits => _nextSentence?.Logits ?? throw new InvalidOperationException("this model has no next-sentence head");

    /// <summary>Classifier logits [Batch, labels] of the last forward.</summary>
    public Tensor ClassifierLogits => _classifier?.Logits ?? throw new InvalidOperationException("this model has no classifier head");

    /// <summary>
    /// Runs the model on a batch and returns the head's mean loss (MLM: over masked positions;
    /// classifier: over sequences), or NaN when the batch carries no targets for the head.
    /// </summary>
    public double Forward(BertBatch batch, DropoutPlan dropout)
    {
        if (batch.Batch != Batch || batch.Seq != Seq)
            throw new ArgumentException($"batch shape [{batch.Batch}, {batch.Seq}] does not match the model's [{Batch}, {Seq}]");
        batch.Validate(Config);
        _dropout = dropout;
        _be.CopyFromHost<int>(batch.InputIds, _ids);
        _be.CopyFromHost<int>(batch.TokenTypeIds, _types);
        // Additive key mask: 0 keeps a key, -10000 hides padding (BERT's original constant).
        var mask = new float[batch.AttentionMask.Length];
        for (int i = 0; i < mask.Length; i++) mask[i] = batch.AttentionMask[i] != 0 ? 0f : -10000f;
        _be.CopyFromHost<float>(mask, _keyMask);

        _embeddings.Forward(_ids, _positions, _types, dropout);
        foreach (var layer in _layers) layer.Forward(_keyMask, dropout);

        double loss = 0;
        bool any = false;
        if (_mlm != null)
        {
            _mlm.Upload(batch.MlmPositions, batch.MlmLabels);
            _mlm.Forward(LastHidden);
            if (_mlm.Count > 0)
            {
                var losses = new float[_mlm.Count];
                _be.CopyToHost<float>(_mlm.Losses, losses);
                loss += losses.Sum(l => (double)l) / _mlm.Count;
                any = true;
            }
        }
        if (_classifier != null)
        {
            _haveClassTargets = _classifier.HasTargets(batch);
            _classifier.Upload(batch);
            double l = _classifier.Forward(LastHidden, dropout, _haveClassTargets);
            if (_haveClassTargets) { loss += l; any = true; }
        }
        if (_nextSentence != null)
        {
            // BertForPreTraining's loss is the sum of the MLM and NSP losses.
            _haveNspTargets = _nextSentence.HasTargets(batch);
            _nextSentence.Upload(batch);
            double l = _nextSentence.Forward(LastHidden, dropout, _haveNspTargets);
            if (_haveNspTargets) { loss += l; any = true; }
        }
        if (!any) return double.NaN;
        if (!double.IsFinite(loss)) throw new ArithmeticException($"the loss is {loss}");
        return loss;
    }

    /// <summary>Accumulates the gradient of the last forward's loss into the parameter gradients.</summary>
    public void Backward()
    {
        _be.Fill(_dA, 0f);
        if (_mlm != null) _mlm.Backward(LastHidden, _dA);
        if (_classifier != null && _haveClassTargets) _classifier.Backward(LastHidden, _dA, _dropout);
        if (_nextSentence != null && _haveNspTargets) _nextSentence.Backward(LastHidden, _dA, _dropout);
        Tensor dOut = _dA, dIn = _dB;
        for (int i = _layers.Length - 1; i >= 0; i--)
        {
            _layers[i].Backward(dOut, dIn, _dropout);
            (dOut, dIn) = (dIn, dOut);
        }
        _embeddings.Backward(dOut, _ids, _positions, _types, _dropout);
    }

    /// <summary>Bytes of activation and scratch memory this model holds.</summary>
    public long ActivationBytes => _arena.Bytes;

    /// <summary>Frees the activations (the parameters belong to <see cref="Parameters"/>).</summary>
    public void Dispose() => _arena.Dispose();
}
