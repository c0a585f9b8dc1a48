using NativeSparsity.Engine.Backends;
using NativeSparsity.Engine.Tensors;
using NativeSparsity.Models.Bert;
using NativeSparsity.Models.Transformer;

namespace NativeSparsity.Models.Vit;

/// <summary>
/// A ViT with its heads for one batch size, over preallocated activations: linear patch embedding,
/// [CLS] prepended, learned position embeddings, dropout, pre-LN encoder layers, final LayerNorm,
/// then an image classifier on the [CLS] row and/or SimMIM-style masked-patch regression (masked
/// patches' embeddings replaced by the mask token before the position embeddings are added; a
/// linear decoder predicts their pixels; mean squared error over the masked pixels).
/// Forward then Backward; gradients accumulate in <see cref="VitParameters.Grads"/>.
/// </summary>
public sealed class VitModel : IDisposable
{
    private readonly IBackend _be;
    private readonly TensorArena _arena;
    private readonly int _patches, _seq, _rows, _hiddenSize, _patchDim, _labels;
    private readonly Linear _projection;
    private readonly TransformerEncoderLayer[] _layers;
    private readonly LayerNormParams _finalNorm;
    private readonly float _eps;
    // Embedding: _source rows [0, B*P) are patch embeddings, row B*P the [CLS] token, row B*P+1 the
    // mask token; each sequence row gathers one source row (_sourceIds), then its position row.
    private readonly Tensor _patchesIn, _source, _sourceIds, _positionIds, _embedded, _keyMask;
    private readonly Tensor _cls, _clsGrad, _position, _positionGrad;
    private readonly Tensor? _maskToken, _maskTokenGrad;
    private readonly Tensor[] _hidden;
    private readonly Tensor _final, _finalMean, _finalRstd;
    private readonly Tensor _dFinal, _dA, _dB, _dEmbedded, _dSource;
    private readonly int[] _sourceIdsHost;
    private DropoutPlan _dropout = DropoutPlan.Off;

    // Classification head.
    private readonly Linear? _classifier;
    private readonly Tensor? _clsRows, _clsIn, _logits, _dLogits, _targets, _losses, _dClsIn;
    private int _counted;
    private bool _haveLabels;

    // Masked-patch head.
    private readonly Linear? _decoder;
    private readonly Tensor? _maskedRows, _maskedPatchIds, _gathered, _prediction, _target, _diff, _dGathered;
    private int _masked;

    public VitModel(VitParameters parameters, int batch)
    {
        if (batch <= 0) throw new ArgumentException($"ViT model: batch must be positive, got {batch}", nameof(batch));
        var cfg = parameters.Config;
        Parameters = parameters;
        _be = parameters.Backend;
        _arena = new TensorArena(_be);
        Batch = batch;
        _patches = cfg.NumPatches; _seq = cfg.SeqLength; _rows = batch * _seq; _hiddenSize = cfg.HiddenSize;
        _patchDim = cfg.PatchDim; _eps = cfg.LayerNormEps; _labels = parameters.Layout.Heads.ClassifierLabels;
        int c = _hiddenSize, bp = batch * _patches;
        Tensor F(params int[] s) => _arena.Allocate(DType.F32, s);
        Tensor I(int n) => _arena.Allocate(DType.I32, n);

        _projection = parameters.Linear(VitParameterLayout.PatchProjection);
        _cls = parameters.Matrix(parameters.Values, VitParameterLayout.ClsToken);
        _clsGrad = parameters.Matrix(parameters.Grads, VitParameterLayout.ClsToken);
        _position = parameters.Matrix(parameters.Values, VitParameterLayout.PositionEmbeddings);
        _positionGrad = parameters.Matrix(parameters.Grads, VitParameterLayout.PositionEmbeddings);
        if (parameters.Layout.Heads.MaskedPatches)
        {
            _maskToken = parameters.Matrix(parameters.Values, VitParameterLayout.MaskToken);
            _maskTokenGrad = parameters.Matrix(parameters.Grads, VitParameterLayout.MaskToken);
        }
        _patchesIn = F(bp, _patchDim);
        _source = F(bp + 2, c); _dSource = F(bp + 2, c);
        _sourceIds = I(_rows); _positionIds = I(_rows);
        _sourceIdsHost = new int[_rows];
        _be.CopyFromHost<int>(Enumerable.Range(0, _rows).Select(i => i % _seq).ToArray(), _positionIds);
        _embedded = F(_rows, c); _dEmbedded = F(_rows, c);
        _keyMask = F(batch, _seq);   // zeros: every token attends to every token

        _hidden = new Tensor[cfg.NumHiddenLayers + 1];
        for (int i = 0; i < _hidden.Length; i++) _hidden[i] = F(_rows, c);
        var shape = new TransformerLayerShape(batch, _seq, c, cfg.NumAttentionHeads, cfg.IntermediateSize, cfg.LayerNormEps,
                                              AttentionDropout: cfg.AttentionProbsDropoutProb > 0);
        var scratch = new TransformerLayerScratch(_arena, shape);
        _layers = new TransformerEncoderLayer[cfg.NumHiddenLayers];
        for (int i = 0; i < _layers.Length; i++)
            _layers[i] = new TransformerEncoderLayer(_be, parameters.LayerWeights(i), LayerNormPlacement.Pre, i, shape,
                                                     _hidden[i], _hidden[i + 1], scratch, _arena);
        _finalNorm = parameters.LayerNorm(VitParameterLayout.FinalLayerNorm);
        _final = F(_rows, c); _finalMean = F(_rows); _finalRstd = F(_rows);
        _dFinal = F(_rows, c); _dA = F(_rows, c); _dB = F(_rows, c);

        if (_labels > 0)
        {
            _classifier = parameters.Linear(VitParameterLayout.Classifier);
            _clsRows = I(batch);
            _be.CopyFromHost<int>(Enumerable.Range(0, batch).Select(b => b * _seq).ToArray(), _clsRows);
            _clsIn = F(batch, c); _logits = F(batch, _labels); _dLogits = F(batch, _labels);
            _targets = I(batch); _losses = F(batch); _dClsIn = F(batch, c);
        }
        if (parameters.Layout.Heads.MaskedPatches)
        {
            _decoder = parameters.Linear(VitParameterLayout.Decoder);
            _maskedRows = I(bp); _maskedPatchIds = I(bp);
            _gathered = F(bp, c); _prediction = F(bp, _patchDim); _target = F(bp, _patchDim);
            _diff = F(bp, _patchDim); _dGathered = F(bp, c);
        }
    }

    public VitParameters Parameters { get; }
    public VitConfig Config => Parameters.Config;
    public int Batch { get; }

    /// <summary>Final hidden states after the last LayerNorm, [Batch * (patches + 1), hidden], row b*(P+1) is image b's [CLS].</summary>
    public Tensor LastHidden => _final;

    /// <summary>Classifier logits [Batch, labels] of the last forward (Backward leaves them intact).</summary>
    public Tensor Logits => _logits ?? throw new InvalidOperationException("this ViT has no classifier head");

    /// <summary>The arg-max class of each image in the last forward (top-1 prediction; the lowest index wins a tie).</summary>
    public int[] PredictedLabels()
    {
        var logits = new float[Batch * _labels];
        _be.CopyToHost<float>(Logits, logits);
        var predicted = new int[Batch];
        for (int b = 0; b < Batch; b++)
            for (int k = 1; k < _labels; k++)
                if (logits[b * _labels + k] > logits[b * _labels + predicted[b]]) predicted[b] = k;
        return predicted;
    }

    /// <summary>Predicted pixels [MaskedCount, patchDim] of the last forward's masked patches, in ascending row order.</summary>
    public Tensor ReconstructedPatches => _prediction?.Slice(0, _masked, _patchDim) ?? throw new InvalidOperationException("this ViT has no masked-patch head");

    /// <summary>Masked patches in the last forward.</summary>
    public int MaskedCount => _masked;

    /// <summary>
    /// Runs the model on a batch; returns the loss: mean cross-entropy over labelled images (when the
    /// batch has labels and the model a classifier) plus the mean squared error over the masked
    /// patches' pixels (when the batch has a patch mask), or NaN when neither applies. Labels are
    /// ignored by a model without a classifier; a patch mask needs the masked-patch head.
    /// </summary>
    public double Forward(VitBatch batch, DropoutPlan dropout)
    {
        if (batch.Batch != Batch) throw new ArgumentException($"ViT model: batch of {batch.Batch} images, the model was built for {Batch}");
        batch.Validate(Config, _labels);
        if (batch.PatchMask != null && _decoder == null)
            throw new ArgumentException("ViT model: the batch has a PatchMask but this model has no masked-patch head (VitHeads.MaskedPatches)");
        _dropout = dropout;
        int c = _hiddenSize, bp = Batch * _patches;
        _be.CopyFromHost<float>(batch.Patches, _patchesIn);

        // Embeddings.
        _projection.Forward(_be, _patchesIn, _source.Slice(0, bp, c), bp);
        _be.Copy(_cls, _source.Slice((long)bp * c, 1, c));
        if (_maskToken != null) _be.Copy(_maskToken, _source.Slice((long)(bp + 1) * c, 1, c));
        var mask = batch.PatchMask;
        var maskedRows = new List<int>();
        var maskedPatches = new List<int>();
        for (int b = 0; b < Batch; b++)
        {
            _sourceIdsHost[b * _seq] = bp;
            for (int j = 0; j < _patches; j++)
            {
                int patch = b * _patches + j, row = b * _seq + 1 + j;
                bool hidden = mask != null && mask[patch] != 0;
                _sourceIdsHost[row] = hidden ? bp + 1 : patch;
                if (hidden) { maskedRows.Add(row); maskedPatches.Add(patch); }
            }
        }
        _be.CopyFromHost<int>(_sourceIdsHost, _sourceIds);
        _be.EmbeddingForward(_sourceIds, _source, _embedded, _rows, c, accumulate: false);
        _be.EmbeddingForward(_positionIds, _position, _embedded, _rows, c, accumulate: true);
        dropout.Apply(_be, _embedded, _hidden[0], DropoutPlan.EmbeddingSite, attention: false);

        foreach (var layer in _layers) layer.Forward(_keyMask, dropout);
        _be.LayerNormForward(_hidden[^1], _finalNorm.Gamma, _finalNorm.Beta, _final, _finalMean, _finalRstd, _rows, c, _eps);

        double loss = 0;
        bool any = false;
        _haveLabels = false;
        if (_classifier is Linear classifier)
        {
            _be.EmbeddingForward(_clsRows!, _final, _clsIn!, Batch, c, accumulate: false);
            classifier.Forward(_be, _clsIn!, _logits!, Batch);
            if (batch.Labels is int[] labels)
            {
                _haveLabels = true;
                _be.CopyFromHost<int>(labels, _targets!);
                _counted = labels.Count(l => l != VitBatch.IgnoreLabel);
                _be.CrossEntropyForward(_logits!, _targets!, _losses!, Batch, _labels, ignoreIndex: VitBatch.IgnoreLabel);
                var losses = new float[Batch];
                _be.CopyToHost<float>(_losses!, losses);
                loss += losses.Sum(l => (double)l) / Math.Max(_counted, 1);
                any = true;
            }
        }
        _masked = maskedRows.Count;
        if (_decoder is Linear decoder && _masked > 0)
        {
            int m = _masked;
            _be.CopyFromHost<int>(maskedRows.ToArray(), _maskedRows!.Slice(0, m));
            var prediction = _prediction!.Slice(0, m, _patchDim);
            var target = _target!.Slice(0, m, _patchDim);
            var diff = _diff!.Slice(0, m, _patchDim);
            if (batch.MaskedTargets != null) _be.CopyFromHost<float>(batch.MaskedTargets, target);
            else
            {
                _be.CopyFromHost<int>(maskedPatches.ToArray(), _maskedPatchIds!.Slice(0, m));
                _be.EmbeddingForward(_maskedPatchIds.Slice(0, m), _patchesIn, target, m, _patchDim, accumulate: false);
            }
            _be.EmbeddingForward(_maskedRows.Slice(0, m), _final, _gathered!.Slice(0, m, c), m, c, accumulate: false);
            decoder.Forward(_be, _gathered.Slice(0, m, c), prediction, m);
            _be.Copy(prediction, diff);
            _be.Axpy(-1f, target, diff);
            var host = new float[(long)m * _patchDim];
            _be.CopyToHost<float>(diff, host);
            double sum = 0;
            foreach (float d in host) sum += (double)d * d;
            loss += sum / host.Length;
            any = true;
        }
        if (!any) return double.NaN;
        if (!double.IsFinite(loss)) throw new ArithmeticException($"the ViT loss is {loss}");
        return loss;
    }

    /// <summary>Accumulates the gradient of the last forward's loss into the parameter gradients.</summary>
    public void Backward()
    {
        int c = _hiddenSize, bp = Batch * _patches;
        _be.Fill(_dFinal, 0f);
        if (_classifier is Linear classifier && _haveLabels)
        {
            _be.CrossEntropyBackward(_logits!, _targets!, _dLogits!, Batch, _labels, VitBatch.IgnoreLabel, 1f / Math.Max(_counted, 1));
            classifier.Backward(_be, _dLogits!, _clsIn!, _dClsIn, Batch);
            _be.EmbeddingBackward(_clsRows!, _dClsIn!, _dFinal, Batch, c);
        }
        if (_decoder is Linear decoder && _masked > 0)
        {
            int m = _masked;
            // d(mean of diff²)/d prediction = 2 diff / (m * patchDim); diff is not needed afterwards.
            var dPrediction = _diff!.Slice(0, m, _patchDim);
            _be.Scale(dPrediction, 2f / ((float)m * _patchDim));
            decoder.Backward(_be, dPrediction, _gathered!.Slice(0, m, c), _dGathered!.Slice(0, m, c), m);
            _be.EmbeddingBackward(_maskedRows!.Slice(0, m), _dGathered.Slice(0, m, c), _dFinal, m, c);
        }
        _be.LayerNormBackward(_dFinal, _hidden[^1], _finalNorm.Gamma, _finalMean, _finalRstd, _dA,
                              _finalNorm.GammaGrad, _finalNorm.BetaGrad, _rows, c);
        Tensor dOut = _dA, dIn = _dB;
        for (int i = _layers.Length - 1; i >= 0; i--)
        {
            _layers[i].Backward(dOut, dIn, _dropout);
            (dOut, dIn) = (dIn, dOut);
        }
        _dropout.Backward(_be, dOut, _dEmbedded, DropoutPlan.EmbeddingSite, attention: false);
        _be.EmbeddingBackward(_positionIds, _dEmbedded, _positionGrad, _rows, c);
        _be.Fill(_dSource, 0f);
        _be.EmbeddingBackward(_sourceIds, _dEmbedded, _dSource, _rows, c);
        _be.Add(_clsGrad, _dSource.Slice((long)bp * c, 1, c), _clsGrad);
        if (_maskTokenGrad != null) _be.Add(_maskTokenGrad, _dSource.Slice((long)(bp + 1) * c, 1, c), _maskTokenGrad);
        _projection.Backward(_be, _dSource.Slice(0, bp, c), _patchesIn, null, bp);
    }

    /// <summary>Bytes of activation and scratch memory this model holds.</summary>
    public long ActivationBytes => _arena.Bytes;

    /// <summary>Frees the activations (the parameters belong to <see cref="Parameters"/>).</summary>
    public void Dispose() => _arena.Dispose();
}
