using NativeSparsity.Engine.Backends;
using NativeSparsity.Engine.Optim;
using NativeSparsity.Engine.Sparsity;
using NativeSparsity.Engine.Tensors;
using NativeSparsity.Experiments.Tasks;
using NativeSparsity.Models.Bert;
using NativeSparsity.Models.Text;

namespace NativeSparsity.Experiments.Training;

/// <summary>How a fine-tuning run cuts its examples into batches and pads them.</summary>
[System.Text.Json.Serialization.JsonConverter(typeof(System.Text.Json.Serialization.JsonStringEnumConverter<FinetuneBatching>))]
public enum FinetuneBatching
{
    /// <summary>Random batches, every one padded to the task's longest example (the only layout before
    /// 2026-12-03; simplest, but short texts pay for the longest one).</summary>
    Padded,
    /// <summary>Random batches, each padded to its own longest row (rounded up to a multiple of 4): the same
    /// batches as <see cref="Padded"/>, with less padding.</summary>
    Shuffled,
    /// <summary>Batches of rows of similar length (<see cref="TaskEncoder.LengthGroupedOrder"/>), each padded
    /// to its longest row (rounded up to a multiple of 4): the least padding, but batches are no longer a random
    /// sample; on minilm-l6/supersense it cost 7 points of accuracy (docs/PERFORMANCE.md), so it is opt-in.</summary>
    ByLength,
}

/// <summary>
/// Fine-tuning settings; the defaults are the paper's (AdamW lr 2e-5, batch 32, weight decay 0,
/// no warm-up, linear decay to 0, eps 1e-8) with Hugging Face's gradient clip of 1.0.
/// </summary>
public sealed record FinetuneSettings
{
    public int Epochs { get; init; } = 3;
    public int BatchSize { get; init; } = 32;
    public int MaxSequenceLength { get; init; } = 128;
    public float LearningRate { get; init; } = 2e-5f;
    public float WeightDecay { get; init; }
    public float AdamEpsilon { get; init; } = 1e-8f;
    public float MaxGradNorm { get; init; } = 1.0f;
    /// <summary>Stop after this many optimizer steps (0: run every epoch); the schedule decays over the capped length.</summary>
    public long MaxSteps { get; init; }
    /// <summary>Data order, dropout and (through <see cref="BertFinetuner.LoadForTask"/>) the head's initialisation.</summary>
    public ulong Seed { get; init; } = 1;
    /// <summary>Evaluate after every epoch (false: only after the last; studies that read only the final value).</summary>
    public bool EvaluateEveryEpoch { get; init; } = true;
    /// <summary>How training batches are formed; evaluation always groups by length (its metrics do not depend on batching).</summary>
    public FinetuneBatching Batching { get; init; } = FinetuneBatching.Shuffled;
    /// <summary>With a mask: run the projections pruned beyond the break-even through the sparse kernels (CPU).</summary>
    public bool SparseKernels { get; init; }

    public void Validate()
    {
        if (Epochs < 1) throw new ArgumentException($"epochs must be at least 1, got {Epochs}");
        if (BatchSize < 1) throw new ArgumentException($"the batch size must be positive, got {BatchSize}");
        if (MaxSequenceLength < 3) throw new ArgumentException($"the maximum sequence length must be at least 3, got {MaxSequenceLength}");
        if (!(LearningRate > 0) || float.IsInfinity(LearningRate)) throw new ArgumentException($"the learning rate must be positive and finite, got {LearningRate}");
        if (!(WeightDecay >= 0)) throw new ArgumentException($"weight decay must be non-negative, got {WeightDecay}");
        if (MaxSteps < 0) throw new ArgumentException($"max steps must be non-negative, got {MaxSteps}");
    }
}

/// <summary>One epoch: mean training loss and the task's metrics on its evaluation split.</summary>
public sealed record FinetuneEpoch(int Epoch, long Steps, double TrainLoss, IReadOnlyDictionary<string, double> Metrics, double Seconds);

/// <summary>What one optimizer step measured.</summary>
public readonly record struct FinetuneStep(long Step, long TotalSteps, int Epoch, double Loss, float LearningRate);

/// <summary>
/// Fine-tunes a BERT with a sequence classification (or regression) head on a task, optionally
/// with a fixed keep mask over the prunable span: the mask is applied once before training and
/// given to AdamW, which keeps pruned weights, their gradients and moments exactly +0. Every batch
/// order and dropout draw is a function of (seed, epoch/step). Partial batches are emitted smaller
/// (a second model shape shares the parameters), so no padding row ever enters the loss or metrics.
/// </summary>
public sealed class BertFinetuner : IDisposable
{
    private readonly IBackend _be;
    /// <summary>Batch lengths are rounded up to this. Measured with `nsparse bench finetune` on minilm-l6/supersense
    /// (docs/PERFORMANCE.md): exact lengths make the per-head attention products odd-shaped and the GEMMs twice as
    /// slow; 8 pads a fifth of the positions; 4 is the fastest.</summary>
    public const int PadMultiple = 4;

    /// <summary>Activations kept for the batch shapes met so far; beyond this the least recently used shape's are freed
    /// (rebuilding one costs tens of milliseconds, a step about a second).</summary>
    public const long ActivationBudgetBytes = 2L << 30;

    private readonly TaskEncoder _encoder, _paddedToBatch;
    private readonly EncodedExample[] _train, _dev;
    private readonly Dictionary<(int Batch, int Seq), BertModel> _models = new();
    private readonly Dictionary<(int Batch, int Seq), long> _lastUse = new();
    private long _uses;
    private readonly Tensor _m, _v, _gradNormSquared;
    private readonly Tensor? _keep;
    private readonly SparseEncoderWeights? _sparse;
    private readonly AdamWOptimizer _optimizer;
    private readonly int _seq;

    public BertFinetuner(BertParameters parameters, ClassificationTask task, ITokenizer tokenizer, FinetuneSettings settings, MaskSet? mask = null)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        ArgumentNullException.ThrowIfNull(task);
        ArgumentNullException.ThrowIfNull(tokenizer);
        settings.Validate();
        if (parameters.Layout.Heads.ClassifierLabels != task.NumLabels)
            throw new ArgumentException($"the model's classifier has {parameters.Layout.Heads.ClassifierLabels} labels, task '{task.Name}' needs {task.NumLabels}");
        if (tokenizer.VocabSize > parameters.Config.VocabSize)
            throw new ArgumentException($"the tokenizer has {tokenizer.VocabSize} ids, the model's vocabulary only {parameters.Config.VocabSize}");
        if (task.Train.Count == 0) throw new ArgumentException($"task '{task.Name}' has no training examples");
        Parameters = parameters; Task = task; Settings = settings;
        _be = parameters.Backend;

        // Size the model to the longest example (up to the maximum): short-text tasks skip padding work.
        int maxLength = Math.Min(settings.MaxSequenceLength, parameters.Config.MaxPositionEmbeddings);
        var probe = new TaskEncoder(tokenizer, maxLength);
        _train = probe.Encode(task.Train);
        _dev = probe.Encode(task.Dev);
        _seq = Math.Max(3, _train.Concat(_dev).Select(probe.Length).DefaultIfEmpty(3).Max());
        _encoder = new TaskEncoder(tokenizer, _seq);
        _paddedToBatch = new TaskEncoder(tokenizer, _seq, padToLongest: true, padMultiple: PadMultiple);

        var layout = parameters.Layout;
        int total = checked((int)layout.TotalLength);
        int prunable = checked((int)layout.PrunableLength);
        _m = _be.Allocate(DType.F32, total); _be.Fill(_m, 0f);
        _v = _be.Allocate(DType.F32, total); _be.Fill(_v, 0f);
        _gradNormSquared = _be.Allocate(DType.F32, 1);
        if (mask != null)
        {
            if (mask.Set.Count != layout.PrunableLength)
                throw new ArgumentException($"the mask covers {mask.Set.Count} weights, the model's prunable span {layout.PrunableLength}");
            // Masks are built on the host; the optimizer needs the bytes where the weights live.
            var bytes = new byte[prunable];
            mask.Keep.Storage.Backend.CopyToHost<byte>(mask.Keep, bytes);
            _keep = _be.Allocate(DType.U8, prunable);
            _be.CopyFromHost<byte>(bytes, _keep);
            _be.ApplyMask(parameters.PrunableValues, _keep);
            PrunedCount = bytes.LongLength - bytes.Count(b => b != 0);
            if (settings.SparseKernels) _sparse = SparseEncoderWeights.ForTraining(parameters, bytes);
        }

        StepsPerEpoch = (_train.Length + settings.BatchSize - 1) / settings.BatchSize;
        TotalSteps = (long)StepsPerEpoch * settings.Epochs;
        if (settings.MaxSteps > 0) TotalSteps = Math.Min(TotalSteps, settings.MaxSteps);
        _optimizer = new AdamWOptimizer(parameters.OptimizerSegments(_m, _v, _keep),
            LearningRateSchedule.LinearDecay(settings.LearningRate, TotalSteps),
            epsilon: settings.AdamEpsilon, weightDecay: settings.WeightDecay, maxGradNorm: settings.MaxGradNorm);
    }

    public BertParameters Parameters { get; }
    public ClassificationTask Task { get; }
    public FinetuneSettings Settings { get; }
    public int StepsPerEpoch { get; }
    public long TotalSteps { get; }
    public long Step => _optimizer.Step;

    /// <summary>Sequence length the model runs at: the longest framed example, capped by the settings.</summary>
    public int SequenceLength => _seq;

    /// <summary>Encoder projections that run through the sparse kernels (0 when dense).</summary>
    public int SparseProjections => _sparse?.Count ?? 0;

    /// <summary>Weights the mask prunes (0 without a mask).</summary>
    public long PrunedCount { get; }

    /// <summary>
    /// Loads a checkpoint folder (ours or Hugging Face's) with a fresh classification head for the
    /// task, initialised from <paramref name="seed"/> (a classifier already in the file is loaded
    /// instead when its shape matches; a different shape is an error naming the tensor).
    /// <paramref name="say"/> hears one line naming what was initialised fresh (the classifier; the pooler of a checkpoint without one).
    /// </summary>
    public static BertParameters LoadForTask(string folder, IBackend backend, ClassificationTask task, ulong seed, Action<string>? say = null)
    {
        var (p, report) = BertCheckpoint.Load(folder, backend, BertHeads.SequenceClassification(task.NumLabels), seed);
        if (report.FreshLine() is { } fresh) say?.Invoke(fresh);
        return p;
    }

    /// <summary>Trains every epoch (or up to MaxSteps), evaluating after each; returns the per-epoch results.</summary>
    public IReadOnlyList<FinetuneEpoch> Train(Action<FinetuneStep>? onStep = null, Action<FinetuneEpoch>? onEpoch = null)
    {
        var results = new List<FinetuneEpoch>();
        for (int epoch = 0; epoch < Settings.Epochs && Step < TotalSteps; epoch++)
        {
            var clock = System.Diagnostics.Stopwatch.StartNew();
            double lossSum = 0; long steps = 0;
            foreach (var tb in TrainingBatches(epoch))
            {
                if (Step >= TotalSteps) break;
                double loss = TrainStep(tb, clock);
                lossSum += loss; steps++;
                onStep?.Invoke(new FinetuneStep(Step, TotalSteps, epoch + 1, loss, _optimizer.LastLearningRate));
            }
            bool last = epoch == Settings.Epochs - 1 || Step >= TotalSteps;
            var metrics = Settings.EvaluateEveryEpoch || last ? Evaluate() : new Dictionary<string, double>();
            var r = new FinetuneEpoch(epoch + 1, Step, steps == 0 ? double.NaN : lossSum / steps, metrics, clock.Elapsed.TotalSeconds);
            results.Add(r);
            onEpoch?.Invoke(r);
        }
        return results;
    }

    /// <summary>The training batches of one epoch, a pure function of (seed, epoch, batching).</summary>
    public IEnumerable<TaskBatch> TrainingBatches(int epoch) => Settings.Batching switch
    {
        FinetuneBatching.Padded => _encoder.Batches(_train, Settings.BatchSize, Task.IsRegression, shuffle: true, Settings.Seed, epoch, PartialBatch.Shrink),
        FinetuneBatching.Shuffled => _paddedToBatch.Batches(_train, Settings.BatchSize, Task.IsRegression, shuffle: true, Settings.Seed, epoch, PartialBatch.Shrink),
        _ => _paddedToBatch.Batches(_train, Settings.BatchSize, Task.IsRegression, shuffle: true, Settings.Seed, epoch, PartialBatch.Shrink, groupByLength: true),
    };

    /// <summary>One optimizer step on <paramref name="batch"/>: forward, backward, clip, AdamW; returns the loss.
    /// <paramref name="clock"/> times the run for the NaN report.</summary>
    public double TrainStep(TaskBatch batch, System.Diagnostics.Stopwatch clock)
    {
        var cfg = Parameters.Config;
        long step = Step;
        var model = ModelFor(batch.Batch);
        Parameters.ZeroGrads();
        var dropout = new DropoutPlan(true, Settings.Seed, step, cfg.HiddenDropoutProb, cfg.AttentionProbsDropoutProb);
        double loss = TrainingStep.ForwardBackward(model, batch.Batch, dropout, step + 1);
        TrainingStep.Finish(_be, Parameters.Grads, _gradNormSquared, _optimizer, loss, 1, clock);
        _sparse?.Refresh();   // the CSR copies follow the updated dense values
        return loss;
    }

    /// <summary>Bytes of activations held by the model shapes met so far.</summary>
    public long ActivationBytes => _models.Values.Sum(m => m.ActivationBytes);

    /// <summary>The task's metrics on its evaluation split, dropout off.</summary>
    public IReadOnlyDictionary<string, double> Evaluate()
    {
        int n = _dev.Length;
        var labels = new int[n];
        var values = new float[n];
        int labelCount = Task.NumLabels;
        foreach (var tb in _paddedToBatch.Batches(_dev, Settings.BatchSize, Task.IsRegression, shuffle: false, partial: PartialBatch.Shrink, groupByLength: true))
        {
            tb.Batch.Labels = null;
            tb.Batch.RegressionTargets = null;
            var model = ModelFor(tb.Batch);
            model.Forward(tb.Batch, DropoutPlan.Off);
            var logits = new float[tb.Batch.Batch * labelCount];
            _be.CopyToHost<float>(model.ClassifierLogits, logits);
            for (int r = 0; r < tb.RealRows; r++)
            {
                int i = tb.ExampleIndices[r];
                var row = logits.AsSpan(r * labelCount, labelCount);
                if (Task.IsRegression) values[i] = row[0];
                else labels[i] = System.Numerics.Tensors.TensorPrimitives.IndexOfMax(row);
            }
        }
        return Task.IsRegression ? Metrics.Evaluate(Task, values, Task.Dev) : Metrics.Evaluate(Task, labels, Task.Dev);
    }

    private BertModel ModelFor(BertBatch batch)
    {
        var key = (batch.Batch, batch.Seq);
        _lastUse[key] = ++_uses;
        if (_models.TryGetValue(key, out var model)) return model;
        while (_models.Count > 0 && ActivationBytes + EstimateBytes(key) > ActivationBudgetBytes)
        {
            var oldest = _models.Keys.MinBy(k => _lastUse[k]);
            _models[oldest].Dispose();
            _models.Remove(oldest);
        }
        model = new BertModel(Parameters, batch.Batch, batch.Seq, sparse: _sparse);
        _models[key] = model;
        return model;
    }

    /// <summary>A shape's activation bytes, scaled from a model already built (activations grow about linearly in tokens).</summary>
    private long EstimateBytes((int Batch, int Seq) key)
    {
        var (k, m) = _models.MaxBy(kv => (long)kv.Key.Batch * kv.Key.Seq);
        return (long)(m.ActivationBytes * ((double)key.Batch * key.Seq / ((long)k.Batch * k.Seq)));
    }

    public void Dispose()
    {
        foreach (var m in _models.Values) m.Dispose();
        _models.Clear();
        _m.Storage.Dispose(); _v.Storage.Dispose(); _gradNormSquared.Storage.Dispose();
        _keep?.Storage.Dispose();
    }
}
