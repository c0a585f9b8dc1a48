using NativeSparsity.Engine.Backends;
using NativeSparsity.Engine.Tensors;

namespace NativeSparsity.Models.Bert;

/// <summary>
/// Pooler (dense + tanh on the [CLS] row) then dropout and a linear classifier, as HF's
/// BertForSequenceClassification. One label means regression (mean squared error, computed on the
/// host since it is one number per sequence); more mean softmax cross-entropy. Rows labelled
/// -100 (or with a NaN target) are padding: they count in neither the loss nor its gradient.
/// </summary>
internal sealed class BertClassifierHead
{
    private readonly IBackend _be;
    private readonly int _batch, _seq, _hidden, _labels;
    private readonly Linear _pooler, _classifier;
    private readonly Tensor _clsRows, _clsIn, _pooled, _pooledDropped, _logits, _targets, _losses;
    private readonly Tensor _dPooled, _dClsIn;
    private float[]? _regressionTargets;
    private int _counted;

    /// <summary>Label of a row that carries no target (a padding row of the last batch); such rows add nothing to the loss.</summary>
    public const int IgnoreLabel = -100;

    private readonly Func<BertBatch, int[]?> _labelsOf;
    private readonly bool _dropout;
    private readonly int _dropoutSite;

    /// <summary>
    /// The sequence-classification head ("classifier", dropout before it), or with
    /// <paramref name="prefix"/> "cls.seq_relationship" BERT's next-sentence head (no dropout, as HF).
    /// </summary>
    public BertClassifierHead(IBackend be, BertParameters p, int batch, int seq, TensorArena arena,
                              string prefix = "classifier", int? labels = null, Func<BertBatch, int[]?>? labelsOf = null,
                              bool dropout = true, int dropoutSite = DropoutPlan.ClassifierSite)
    {
        _be = be; _batch = batch; _seq = seq; _hidden = p.Config.HiddenSize; _labels = labels ?? p.Layout.Heads.ClassifierLabels;
        _labelsOf = labelsOf ?? (b => b.Labels);
        _dropout = dropout; _dropoutSite = dropoutSite;
        _pooler = p.Linear("bert.pooler.dense");
        _classifier = p.Linear(prefix);
        _clsRows = arena.Allocate(DType.I32, batch);
        be.CopyFromHost<int>(Enumerable.Range(0, batch).Select(b => b * seq).ToArray(), _clsRows);
        Tensor F(params int[] s) => arena.Allocate(DType.F32, s);
        _clsIn = F(batch, _hidden); _pooled = F(batch, _hidden); _pooledDropped = F(batch, _hidden);
        _logits = F(batch, _labels); _targets = arena.Allocate(DType.I32, batch); _losses = F(batch);
        _dPooled = F(batch, _hidden); _dClsIn = F(batch, _hidden);
    }

    public bool IsRegression => _labels == 1;

    /// <summary>Whether the batch carries targets for this head.</summary>
    public bool HasTargets(BertBatch batch) => IsRegression ? batch.RegressionTargets != null : _labelsOf(batch) != null;
    public Tensor Logits => _logits;

    public void Upload(BertBatch batch)
    {
        if (IsRegression)
        {
            _regressionTargets = batch.RegressionTargets;
            _counted = _regressionTargets?.Count(t => !float.IsNaN(t)) ?? 0;
        }
        else if (_labelsOf(batch) is int[] labels)
        {
            if (labels.Length != _batch) throw new ArgumentException($"{labels.Length} labels for a batch of {_batch} sequences");
            for (int i = 0; i < labels.Length; i++)
                if ((uint)labels[i] >= (uint)_labels && labels[i] != IgnoreLabel)
                    throw new ArgumentException($"label {labels[i]} of sequence {i} is outside [0, {_labels}) and is not the ignore label {IgnoreLabel}");
            _be.CopyFromHost<int>(labels, _targets);
            _counted = labels.Count(l => l != IgnoreLabel);
        }
    }

    /// <summary>Forward; returns the mean loss when targets were uploaded, else NaN.</summary>
    public double Forward(Tensor hidden, in DropoutPlan dropout, bool haveTargets)
    {
        _be.EmbeddingForward(_clsRows, hidden, _clsIn, _batch, _hidden, accumulate: false);
        _pooler.Forward(_be, _clsIn, _pooled, _batch);
        _be.TanhForward(_pooled, _pooled);
        (_dropout ? dropout : DropoutPlan.Off).Apply(_be, _pooled, _pooledDropped, _dropoutSite, attention: false);
        _classifier.Forward(_be, _pooledDropped, _logits, _batch);
        if (!haveTargets) return double.NaN;
        if (IsRegression)
        {
            var pred = new float[_batch];
            _be.CopyToHost<float>(_logits, pred);
            double sum = 0;
            for (int i = 0; i < _batch; i++)
                if (!float.IsNaN(_regressionTargets![i])) { double d = pred[i] - _regressionTargets[i]; sum += d * d; }
            return sum / Math.Max(_counted, 1);
        }
        _be.CrossEntropyForward(_logits, _targets, _losses, _batch, _labels, ignoreIndex: IgnoreLabel);
        var losses = new float[_batch];
        _be.CopyToHost<float>(_losses, losses);
        return losses.Sum(l => (double)l) / Math.Max(_counted, 1);
    }

    public void Backward(Tensor hidden, Tensor dHidden, in DropoutPlan dropout)
    {
        if (IsRegression)
        {
            var pred = new float[_batch];
            _be.CopyToHost<float>(_logits, pred);
            var grad = new float[_batch];
            for (int i = 0; i < _batch; i++)
                grad[i] = float.IsNaN(_regressionTargets![i]) ? 0f : 2f * (pred[i] - _regressionTargets[i]) / Math.Max(_counted, 1);
            _be.CopyFromHost<float>(grad, _logits);
        }
        else
        {
            _be.CrossEntropyBackward(_logits, _targets, _logits, _batch, _labels, IgnoreLabel, 1f / Math.Max(_counted, 1));
        }
        _classifier.Backward(_be, _logits, _pooledDropped, _dPooled, _batch);
        (_dropout ? dropout : DropoutPlan.Off).Backward(_be, _dPooled, _dPooled, _dropoutSite, attention: false);
        _be.TanhBackward(_pooled, _dPooled, _dPooled);
        _pooler.Backward(_be, _dPooled, _clsIn, _dClsIn, _batch);
        _be.EmbeddingBackward(_clsRows, _dClsIn, dHidden, _batch, _hidden);
    }
}
