using System.Text.Json;
using System.Text.Json.Nodes;
using NativeSparsity.Engine.Backends;
using NativeSparsity.Engine.IO;
using NativeSparsity.Engine.Optim;
using NativeSparsity.Engine.Tensors;
using NativeSparsity.Experiments.Tasks;
using NativeSparsity.Models.Bert;
using NativeSparsity.Experiments.Reporting;

namespace NativeSparsity.Experiments.Training;

/// <summary>
/// Supervised pre-training of a BERT from scratch: sequence classification on the pooled [CLS]
/// with the same optimizer as <see cref="BertPretrainer"/> (AdamW, warm-up then linear decay,
/// global-norm clipping, gradient accumulation), so a supervised and a self-supervised run differ
/// only in their objective. The training examples form an endless stream of epochs, each a Philox
/// permutation of (seed, epoch); batch and dropout draws are pure functions of (seed, step), so a
/// resumed run continues bit for bit.
/// </summary>
public sealed class SupervisedPretrainer : IDisposable, IProbedTrainer
{
    private readonly IBackend _be;
    private readonly TaskEncoder _encoder;
    private readonly IReadOnlyList<EncodedExample> _train, _heldOut;
    private readonly BertModel _model;
    private readonly Tensor _m, _v, _gradNormSquared;
    private readonly AdamWOptimizer _optimizer;
    private long _cachedEpoch = -1;
    private int[] _cachedOrder = Array.Empty<int>();

    public SupervisedPretrainer(IBackend backend, BertParameters parameters, PretrainSettings settings, TaskEncoder encoder,
                                IReadOnlyList<EncodedExample> train, IReadOnlyList<EncodedExample> heldOut)
    {
        if (parameters.Layout.Heads.ClassifierLabels < 2)
            throw new ArgumentException("supervised pre-training needs a classifier head with at least 2 labels (BertHeads.SequenceClassification)");
        if (encoder.MaxSequenceLength != settings.SequenceLength)
            throw new ArgumentException($"the task encoder frames {encoder.MaxSequenceLength} tokens, settings say {settings.SequenceLength}");
        if (settings.GradientAccumulation < 1) throw new ArgumentException("gradient accumulation must be at least 1");
        if (train.Count == 0) throw new ArgumentException("supervised pre-training needs training examples", nameof(train));
        if (heldOut.Count == 0) throw new ArgumentException("supervised pre-training needs held-out examples for the probe", nameof(heldOut));
        _be = backend; Parameters = parameters; Settings = settings; _encoder = encoder; _train = train; _heldOut = heldOut;
        _model = new BertModel(parameters, settings.BatchSize, settings.SequenceLength);
        var layout = parameters.Layout;
        int total = checked((int)layout.TotalLength);
        _m = backend.Allocate(DType.F32, total);
        _v = backend.Allocate(DType.F32, total);
        _gradNormSquared = backend.Allocate(DType.F32, 1);
        _optimizer = new AdamWOptimizer(
            parameters.OptimizerSegments(_m, _v),
            LearningRateSchedule.LinearWarmupDecay(settings.LearningRate, Math.Min(settings.WarmupSteps, settings.Steps), settings.Steps),
            weightDecay: settings.WeightDecay, maxGradNorm: settings.MaxGradNorm);
    }

    public BertParameters Parameters { get; }
    public PretrainSettings Settings { get; }
    public long Step => _optimizer.Step;

    /// <summary>Indices of micro-batch <paramref name="micro"/> of <paramref name="step"/>: positions in the endless epoch stream.</summary>
    public int[] TrainIndices(long step, int micro)
    {
        int n = _train.Count, b = Settings.BatchSize;
        long first = (step * Settings.GradientAccumulation + micro) * b;
        var indices = new int[b];
        for (int r = 0; r < b; r++)
        {
            long position = first + r;
            long epoch = position / n;
            if (epoch != _cachedEpoch) { _cachedOrder = TaskEncoder.Permutation(n, Settings.Seed, epoch); _cachedEpoch = epoch; }
            indices[r] = _cachedOrder[(int)(position % n)];
        }
        return indices;
    }

    public PretrainStepResult TrainStep()
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        long step = _optimizer.Step;
        int accum = Settings.GradientAccumulation;
        var cfg = Parameters.Config;
        Parameters.ZeroGrads();
        double loss = 0;
        for (int micro = 0; micro < accum; micro++)
        {
            var batch = _encoder.Build(_train, TrainIndices(step, micro), Settings.BatchSize, regression: false).Batch;
            var dropout = new DropoutPlan(true, Settings.Seed, step * accum + micro, cfg.HiddenDropoutProb, cfg.AttentionProbsDropoutProb);
            loss += TrainingStep.ForwardBackward(_model, batch, dropout, step + 1) / accum;
        }
        return TrainingStep.Finish(_be, Parameters.Grads, _gradNormSquared, _optimizer, loss, accum, clock);
    }

    /// <summary>
    /// Cross-entropy and accuracy of the classifier on the first <paramref name="batches"/> batches
    /// of the held-out examples (in order, dropout off; the last batch padded, pad rows not counted).
    /// Returned as an <see cref="MlmEvaluation"/> so the sparsity probe and its log treat both objectives alike.
    /// </summary>
    public MlmEvaluation EvaluateHeldOut(int batches)
    {
        double lossSum = 0; long correct = 0; int count = 0;
        int labels = Parameters.Layout.Heads.ClassifierLabels, b = Settings.BatchSize;
        var logits = new float[b * labels];
        int i = 0;
        foreach (var tb in _encoder.Batches(_heldOut, b, regression: false, shuffle: false, partial: PartialBatch.Pad))
        {
            if (i++ >= batches) break;
            double l = _model.Forward(tb.Batch, DropoutPlan.Off);
            _be.CopyToHost<float>(_model.ClassifierLogits, logits);
            for (int r = 0; r < tb.RealRows; r++)
            {
                int best = System.Numerics.Tensors.TensorPrimitives.IndexOfMax(logits.AsSpan(r * labels, labels));
                if (best == tb.Batch.Labels![r]) correct++;
            }
            lossSum += l * tb.RealRows;
            count += tb.RealRows;
        }
        return count == 0 ? new MlmEvaluation(double.NaN, double.NaN, 0) : new MlmEvaluation(lossSum / count, (double)correct / count, count);
    }

    /// <summary>Writes a resumable checkpoint folder atomically (same files as <see cref="BertPretrainer"/>).</summary>
    public void SaveCheckpoint(string folder, Action<string>? extraFiles = null)
    {
        var meta = new Dictionary<string, string> { ["step"] = Step.ToString(), ["objective"] = "supervised" };
        BertCheckpoint.Save(folder, Parameters, meta, tmp =>
        {
            var writer = new SafetensorsWriter();
            writer.SetMetadata("step", Step.ToString());
            writer.Add("exp_avg", _m);
            writer.Add("exp_avg_sq", _v);
            writer.Write(Path.Combine(tmp, BertPretrainer.OptimizerFile));
            var state = new JsonObject
            {
                ["step"] = Step,
                ["seed"] = Settings.Seed.ToString(),
                ["objective"] = "supervised sequence classification",
                ["settings"] = SettingsJson.ToNode(Settings),
                ["data_position"] = "batches are a function of (seed, step)",
            };
            File.WriteAllText(Path.Combine(tmp, BertPretrainer.StateFile), state.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
            extraFiles?.Invoke(tmp);
        });
    }

    public void LoadCheckpoint(string folder)
    {
        BertCheckpoint.LoadWeights(folder, Parameters);
        using (var file = SafetensorsFile.Open(Path.Combine(folder, BertPretrainer.OptimizerFile)))
        {
            file.ReadInto("exp_avg", _m);
            file.ReadInto("exp_avg_sq", _v);
        }
        string statePath = Path.Combine(folder, BertPretrainer.StateFile);
        var state = JsonNode.Parse(File.ReadAllText(statePath)) as JsonObject
                    ?? throw new InvalidDataException($"{statePath}: expected a JSON object");
        long step = state["step"]?.GetValue<long>() ?? throw new InvalidDataException($"{statePath}: no 'step'");
        string seed = state["seed"]?.GetValue<string>() ?? "";
        if (seed != Settings.Seed.ToString())
            throw new InvalidDataException($"{statePath}: the checkpoint was trained with seed {seed}, this run uses {Settings.Seed}");
        _optimizer.Step = step;
    }

    public void Dispose()
    {
        _model.Dispose();
        _m.Storage.Dispose(); _v.Storage.Dispose(); _gradNormSquared.Storage.Dispose();
    }
}
