using NativeSparsity.Engine.Backends;
using NativeSparsity.Engine.Tensors;

namespace NativeSparsity.Engine.Optim;

/// <summary>
/// A run of the flat buffers updated by one fused AdamW call: equal-length F32 views of the
/// parameters, their gradients and both moments, an optional U8 keep mask (the prunable span's),
/// and whether weight decay applies (not to biases and LayerNorm, as BERT trains).
/// </summary>
public sealed record AdamWSegment(Tensor Param, Tensor Grad, Tensor M, Tensor V, Tensor? Mask, bool Decay)
{
    internal void Check(int index)
    {
        foreach (var (t, name) in new[] { (Param, "param"), (Grad, "grad"), (M, "m"), (V, "v") })
        {
            if (t.DType != DType.F32) throw new ArgumentException($"AdamW segment {index}: {name} {t} must be F32");
            if (t.Length != Param.Length) throw new ArgumentException($"AdamW segment {index}: {name} {t} holds {t.Length} elements, param holds {Param.Length}");
        }
        if (Mask != null && (Mask.DType != DType.U8 || Mask.Length != Param.Length))
            throw new ArgumentException($"AdamW segment {index}: mask {Mask} must be U8 with {Param.Length} elements");
    }
}

/// <summary>
/// AdamW over the model's flat buffers: holds the hyper-parameters and the step count and issues
/// one backend pass per segment. Defaults are the paper's fine-tuning ones (betas 0.9/0.999,
/// eps 1e-8, no weight decay); pre-training passes weight decay 0.01.
/// </summary>
public sealed class AdamWOptimizer
{
    private readonly AdamWSegment[] _segments;

    public AdamWOptimizer(IEnumerable<AdamWSegment> segments, LearningRateSchedule schedule,
                          float beta1 = 0.9f, float beta2 = 0.999f, float epsilon = 1e-8f,
                          float weightDecay = 0f, float maxGradNorm = 0f)
    {
        ArgumentNullException.ThrowIfNull(segments);
        ArgumentNullException.ThrowIfNull(schedule);
        _segments = segments.ToArray();
        if (_segments.Length == 0) throw new ArgumentException("AdamW needs at least one segment", nameof(segments));
        for (int i = 0; i < _segments.Length; i++) _segments[i].Check(i);
        if (!(beta1 >= 0 && beta1 < 1)) throw new ArgumentOutOfRangeException(nameof(beta1), beta1, "must lie in [0, 1)");
        if (!(beta2 >= 0 && beta2 < 1)) throw new ArgumentOutOfRangeException(nameof(beta2), beta2, "must lie in [0, 1)");
        if (!(epsilon > 0)) throw new ArgumentOutOfRangeException(nameof(epsilon), epsilon, "must be positive");
        if (!(weightDecay >= 0)) throw new ArgumentOutOfRangeException(nameof(weightDecay), weightDecay, "must be non-negative");
        Schedule = schedule;
        Beta1 = beta1; Beta2 = beta2; Epsilon = epsilon; WeightDecay = weightDecay; MaxGradNorm = maxGradNorm;
    }

    public IReadOnlyList<AdamWSegment> Segments => _segments;
    public LearningRateSchedule Schedule { get; }
    public float Beta1 { get; }
    public float Beta2 { get; }
    public float Epsilon { get; }
    public float WeightDecay { get; }

    /// <summary>Global gradient-norm clip; 0 disables.</summary>
    public float MaxGradNorm { get; }

    /// <summary>Updates done so far (the next update is number Step + 1). Set it when resuming.</summary>
    public long Step { get; set; }

    /// <summary>The learning rate of the most recent update.</summary>
    public float LastLearningRate { get; private set; }

    /// <summary>
    /// One update of every segment. <paramref name="gradNormSquared"/> is the 1-element sum of
    /// squared gradients over all parameters (e.g. IBackend.SumOfSquares of the flat gradient
    /// buffer); required when clipping is on.
    /// </summary>
    public void Update(IBackend backend, Tensor? gradNormSquared = null)
    {
        ArgumentNullException.ThrowIfNull(backend);
        if (MaxGradNorm > 0 && gradNormSquared == null)
            throw new ArgumentException($"gradient clipping to {MaxGradNorm} needs the squared gradient norm", nameof(gradNormSquared));
        long step = Step + 1;
        float lr = Schedule.At(step);
        foreach (var s in _segments)
            backend.AdamW(s.Param, s.Grad, s.M, s.V, s.Mask, gradNormSquared,
                new AdamWParameters(lr, Beta1, Beta2, Epsilon, s.Decay ? WeightDecay : 0f, step, MaxGradNorm));
        Step = step;
        LastLearningRate = lr;
    }
}
