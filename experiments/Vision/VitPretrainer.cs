using System.Text.Json;
using System.Text.Json.Nodes;
using NativeSparsity.Engine.Backends;
using NativeSparsity.Engine.IO;
using NativeSparsity.Engine.Optim;
using NativeSparsity.Engine.Tensors;
using NativeSparsity.Experiments.Training;
using NativeSparsity.Models.Bert;
using NativeSparsity.Models.Vision;
using NativeSparsity.Models.Vit;
using NativeSparsity.Experiments.Reporting;

namespace NativeSparsity.Experiments.Vision;

/// <summary>
/// Pre-training of a ViT on labelled images, supervised (cross-entropy on the classes of the [CLS]
/// head) or self-supervised (SimMIM-style: round(ratio * P) patches of every image hidden behind the
/// mask token, mean squared error on their normalised pixels). AdamW (no decay on biases and
/// LayerNorm), linear warm-up then linear decay, global-norm clipping.
/// <para>Every training batch is a pure function of (seed, step): image slot k of step s is position
/// s * B + k of an endless sequence of epochs, each a Philox permutation keyed by (seed, epoch); the
/// batch is augmented (random crop with padding, horizontal flip) with the epoch of its first image,
/// and the patch mask is keyed by (seed, step). A run resumed from a checkpoint (weights, AdamW moments,
/// step) therefore continues bit for bit.</para>
/// <para>Layout: <see cref="PatchBatcher"/> writes a patch's elements in (y, x, channel) order and
/// <see cref="VitBatch"/> expects (channel, y, x); with one channel (Fashion-MNIST) the two orders are
/// the same, so the constructor refuses multi-channel images rather than silently permuting pixels.</para>
/// </summary>
public sealed class VitPretrainer : IDisposable, IProbedTrainer
{
    public const string OptimizerFile = BertPretrainer.OptimizerFile;
    public const string StateFile = BertPretrainer.StateFile;
    /// <summary>Seed of the held-out patch masks (stream = evaluation batch index): every evaluation hides the same patches.</summary>
    public const ulong EvalMaskSeed = 0x5eed_e7a1_0017UL;

    private readonly IBackend _be;
    private readonly LabeledImages _train, _validation;
    private readonly PatchBatcher _batcher;
    private readonly VitModel _model;
    private readonly Tensor _m, _v, _gradNormSquared;
    private readonly AdamWOptimizer _optimizer;
    private readonly VitBatch _batch;
    private (int Epoch, int[] Order) _order0 = (-1, Array.Empty<int>()), _order1 = (-1, Array.Empty<int>());

    public VitPretrainer(IBackend backend, VitParameters parameters, PretrainSettings settings, VitObjective objective,
                         LabeledImages train, LabeledImages validation, PixelNormalization normalization, double maskRatio,
                         Augmentation? augmentation = null)
    {
        ArgumentNullException.ThrowIfNull(train);
        ArgumentNullException.ThrowIfNull(validation);
        var cfg = parameters.Config;
        if (settings.GradientAccumulation != 1) throw new ArgumentException("ViT pre-training: gradient accumulation is not supported (use a larger batch)");
        if (train.Count == 0) throw new ArgumentException("ViT pre-training: the training set is empty", nameof(train));
        if (validation.Count == 0) throw new ArgumentException("ViT pre-training: the validation set is empty", nameof(validation));
        if (train.Channels != 1) throw new ArgumentException($"ViT pre-training: {train.Channels}-channel images; only one channel is supported (patch element order)", nameof(train));
        foreach (var (name, set) in new[] { ("train", train), ("validation", validation) })
            if (set.Height != cfg.ImageSize || set.Width != cfg.ImageSize || set.Channels != cfg.NumChannels)
                throw new ArgumentException($"ViT pre-training: {name} images are {set.Height}x{set.Width}x{set.Channels}, the model expects {cfg.ImageSize}x{cfg.ImageSize}x{cfg.NumChannels}");
        var heads = parameters.Layout.Heads;
        if (objective == VitObjective.Supervised && heads.ClassifierLabels != train.ClassCount)
            throw new ArgumentException($"ViT pre-training: supervised needs a classifier head of {train.ClassCount} labels, the model has {heads.ClassifierLabels}");
        if (objective == VitObjective.MaskedPatches)
        {
            if (!heads.MaskedPatches) throw new ArgumentException("ViT pre-training: masked-patch prediction needs the masked-patch head (VitHeads.MaskedImageModeling)");
            int hidden = PatchMaskPlan.MaskedCountFor(cfg.NumPatches, maskRatio);
            if (hidden < 1) throw new ArgumentException($"ViT pre-training: mask ratio {maskRatio} hides no patch of {cfg.NumPatches}", nameof(maskRatio));
        }
        _be = backend; Parameters = parameters; Settings = settings; Objective = objective; MaskRatio = maskRatio;
        _train = train; _validation = validation; Normalization = normalization;
        _batcher = new PatchBatcher(cfg.ImageSize, cfg.ImageSize, cfg.NumChannels, cfg.PatchSize, normalization, augmentation ?? new Augmentation());
        _model = new VitModel(parameters, settings.BatchSize);
        _batch = new VitBatch(cfg, settings.BatchSize);
        int total = checked((int)parameters.Layout.TotalLength);
        _m = backend.Allocate(DType.F32, total);
        _v = backend.Allocate(DType.F32, total);
        _gradNormSquared = backend.Allocate(DType.F32, 1);
        _optimizer = new AdamWOptimizer(
            parameters.OptimizerSegments(_m, _v),
            LearningRateSchedule.LinearWarmupDecay(settings.LearningRate, Math.Min(settings.WarmupSteps, settings.Steps), settings.Steps),
            weightDecay: settings.WeightDecay, maxGradNorm: settings.MaxGradNorm);
    }

    public VitParameters Parameters { get; }
    public PretrainSettings Settings { get; }
    public VitObjective Objective { get; }
    public double MaskRatio { get; }
    public PixelNormalization Normalization { get; }
    public VitModel Model => _model;

    /// <summary>Optimizer steps completed.</summary>
    public long Step => _optimizer.Step;

    /// <summary>Which images (indices into the training set) step <paramref name="step"/> trains on, and the epoch of the first.</summary>
    public (int[] Indices, int Epoch) TrainIndices(long step)
    {
        int n = _train.Count, b = Settings.BatchSize;
        var indices = new int[b];
        long start = step * b;
        int firstEpoch = checked((int)(start / n));
        for (int k = 0; k < b; k++)
        {
            long position = start + k;
            indices[k] = Order(checked((int)(position / n)))[(int)(position % n)];
        }
        return (indices, firstEpoch);
    }

    private int[] Order(int epoch)
    {
        if (_order0.Epoch == epoch) return _order0.Order;
        if (_order1.Epoch == epoch) return _order1.Order;
        var order = PatchBatcher.EpochOrder(_train.Count, Settings.Seed, epoch);
        _order0 = _order1;
        _order1 = (epoch, order);
        return order;
    }

    /// <summary>Fills the model batch for training step <paramref name="step"/> (augmented; labels or patch mask per the objective).</summary>
    private void FillTrainBatch(long step)
    {
        var (indices, epoch) = TrainIndices(step);
        var vision = _batcher.MakeBatch(_train, indices, Settings.Seed, epoch, augment: true);
        vision.Patches.CopyTo(_batch.Patches, 0);
        if (Objective == VitObjective.Supervised) { _batch.Labels = vision.Labels; _batch.PatchMask = null; }
        else
        {
            _batch.Labels = null;
            _batch.PatchMask = PatchMaskPlan.Create(Settings.BatchSize, Parameters.Config.NumPatches, MaskRatio, Settings.Seed, step).Mask;
        }
        _batch.MaskedTargets = null;
    }

    public PretrainStepResult TrainStep()
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        long step = _optimizer.Step;
        Parameters.ZeroGrads();
        FillTrainBatch(step);
        var cfg = Parameters.Config;
        var dropout = new DropoutPlan(true, Settings.Seed, step, cfg.HiddenDropoutProb, cfg.AttentionProbsDropoutProb);
        double loss;
        try { loss = _model.Forward(_batch, dropout); }
        catch (ArithmeticException) { throw new TrainingDivergedException(step + 1, double.NaN); }
        if (double.IsNaN(loss)) throw new TrainingDivergedException(step + 1, loss);
        _model.Backward();
        return TrainingStep.Finish(_be, Parameters.Grads, _gradNormSquared, _optimizer, loss, 1, clock);
    }

    /// <summary>
    /// The objective's quality on the first <paramref name="batches"/> batches of the validation set
    /// (in order, no augmentation, dropout off; a short last batch is padded and the padding ignored).
    /// Supervised: (mean cross-entropy, top-1 accuracy, images). Masked patches, with masks drawn from a
    /// fixed seed so every evaluation sees the same task: (mean squared error per hidden pixel,
    /// R² = 1 - SSE / SST of the hidden pixels around their mean, hidden patches). R² takes the place of
    /// an accuracy so that the probe's epsilon reads as "points of variance explained".
    /// </summary>
    public MlmEvaluation EvaluateHeldOut(int batches)
    {
        var cfg = Parameters.Config;
        int b = Settings.BatchSize, p = cfg.NumPatches, dim = cfg.PatchDim;
        int available = PatchBatcher.BatchCount(_validation.Count, b);
        batches = Math.Min(Math.Max(batches, 0), available);
        double lossSum = 0, sse = 0, targetSum = 0, targetSquares = 0;   // lossSum: cross-entropy; sse: squared pixel error
        long correct = 0, values = 0;
        int count = 0;
        for (int i = 0; i < batches; i++)
        {
            int start = i * b, n = Math.Min(b, _validation.Count - start);
            var vision = _batcher.MakeBatch(_validation, Enumerable.Range(start, n).ToArray(), 0, 0, augment: false);
            Array.Clear(_batch.Patches);
            vision.Patches.CopyTo(_batch.Patches, 0);
            _batch.MaskedTargets = null;
            if (Objective == VitObjective.Supervised)
            {
                var labels = new int[b];
                Array.Fill(labels, VitBatch.IgnoreLabel);
                vision.Labels.CopyTo(labels, 0);
                _batch.Labels = labels; _batch.PatchMask = null;
                double loss = _model.Forward(_batch, DropoutPlan.Off);
                lossSum += loss * n;
                var predicted = _model.PredictedLabels();
                for (int k = 0; k < n; k++) if (predicted[k] == labels[k]) correct++;
                count += n;
            }
            else
            {
                var mask = PatchMaskPlan.Create(b, p, MaskRatio, EvalMaskSeed, i).Mask;
                Array.Clear(mask, n * p, (b - n) * p);
                _batch.Labels = null; _batch.PatchMask = mask;
                double mse = _model.Forward(_batch, DropoutPlan.Off);
                int masked = _model.MaskedCount;
                long pixels = (long)masked * dim;
                sse += mse * pixels;
                for (int row = 0; row < mask.Length; row++)
                {
                    if (mask[row] == 0) continue;
                    foreach (float t in _batch.Patches.AsSpan(row * dim, dim)) { targetSum += t; targetSquares += (double)t * t; }
                }
                values += pixels;
                count += masked;
            }
        }
        if (count == 0) return new MlmEvaluation(double.NaN, double.NaN, 0);
        if (Objective == VitObjective.Supervised) return new MlmEvaluation(lossSum / count, (double)correct / count, count);
        double mean = targetSum / values, sst = targetSquares - values * mean * mean;
        return new MlmEvaluation(sse / values, sst > 0 ? 1 - sse / sst : double.NaN, count);
    }

    /// <summary>Writes a resumable checkpoint: a VitCheckpoint folder plus AdamW moments and the trainer state.</summary>
    public void SaveCheckpoint(string folder, Action<string>? extraFiles = null)
    {
        var meta = new Dictionary<string, string> { ["step"] = Step.ToString(), ["objective"] = Objective.ToString() };
        VitCheckpoint.Save(folder, Parameters, meta, tmp =>
        {
            var writer = new SafetensorsWriter();
            writer.SetMetadata("step", Step.ToString());
            writer.Add("exp_avg", _m);
            writer.Add("exp_avg_sq", _v);
            writer.Write(Path.Combine(tmp, OptimizerFile));
            var state = new JsonObject
            {
                ["step"] = Step,
                ["seed"] = Settings.Seed.ToString(),
                ["objective"] = Objective.ToString(),
                ["mask_ratio"] = MaskRatio,
                ["pixel_mean"] = Normalization.Mean,
                ["pixel_std"] = Normalization.Std,
                ["settings"] = SettingsJson.ToNode(Settings),
                ["data_position"] = "batches are a function of (seed, step)",
            };
            File.WriteAllText(Path.Combine(tmp, StateFile), state.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
            extraFiles?.Invoke(tmp);
        });
    }

    /// <summary>Restores weights, moments and step from a checkpoint this trainer's settings wrote.</summary>
    public void LoadCheckpoint(string folder)
    {
        string statePath = Path.Combine(folder, StateFile);
        var state = JsonNode.Parse(File.ReadAllText(statePath)) as JsonObject
                    ?? throw new InvalidDataException($"{statePath}: expected a JSON object");
        long step = state["step"]?.GetValue<long>() ?? throw new InvalidDataException($"{statePath}: no 'step'");
        string seed = state["seed"]?.GetValue<string>() ?? "";
        if (seed != Settings.Seed.ToString())
            throw new InvalidDataException($"{statePath}: the checkpoint was trained with seed {seed}, this run uses {Settings.Seed}");
        string objective = state["objective"]?.GetValue<string>() ?? "";
        if (objective != Objective.ToString())
            throw new InvalidDataException($"{statePath}: the checkpoint was trained with objective {objective}, this run uses {Objective}");
        VitCheckpoint.LoadWeights(folder, Parameters);
        using (var file = SafetensorsFile.Open(Path.Combine(folder, OptimizerFile)))
        {
            file.ReadInto("exp_avg", _m);
            file.ReadInto("exp_avg_sq", _v);
        }
        _optimizer.Step = step;
    }

    /// <summary>Reads the pixel normalisation a checkpoint was trained with (null when the folder has no trainer state).</summary>
    public static PixelNormalization? ReadNormalization(string folder)
    {
        string statePath = Path.Combine(folder, StateFile);
        if (!File.Exists(statePath)) return null;
        var state = JsonNode.Parse(File.ReadAllText(statePath));
        return state?["pixel_mean"] is JsonValue m && state["pixel_std"] is JsonValue s ? new PixelNormalization(m.GetValue<float>(), s.GetValue<float>()) : null;
    }

    public void Dispose()
    {
        _model.Dispose();
        _m.Storage.Dispose(); _v.Storage.Dispose(); _gradNormSquared.Storage.Dispose();
    }
}
