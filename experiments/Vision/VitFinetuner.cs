using NativeSparsity.Engine.Backends;
using NativeSparsity.Engine.Backends.Cpu;
using NativeSparsity.Engine.Optim;
using NativeSparsity.Engine.Sparsity;
using NativeSparsity.Engine.Tensors;
using NativeSparsity.Experiments.Training;
using NativeSparsity.Models.Bert;
using NativeSparsity.Models.Vision;
using NativeSparsity.Models.Vit;

namespace NativeSparsity.Experiments.Vision;

/// <summary>
/// ViT fine-tuning settings. The defaults are the paper's for vision (batch 64, 8 epochs, AdamW
/// lr 2e-5, eps 1e-8, weight decay 0, no warm-up, linear decay to 0) with a gradient clip of 1.0
/// and light augmentation (random crop with 2-pixel padding, horizontal flip).
/// <see cref="Quick"/> is what the CPU studies use.
/// </summary>
public sealed record VitFinetuneSettings
{
    public int Epochs { get; init; } = 8;
    public int BatchSize { get; init; } = 64;
    public float LearningRate { get; init; } = 2e-5f;
    public float WeightDecay { get; init; }
    public float AdamEpsilon { get; init; } = 1e-8f;
    public float MaxGradNorm { get; init; } = 1.0f;
    /// <summary>Linear warm-up steps before the linear decay (the paper: none).</summary>
    public long WarmupSteps { get; init; }
    /// <summary>Stop after this many optimizer steps (0: run every epoch); the schedule decays over the capped length.</summary>
    public long MaxSteps { get; init; }
    /// <summary>Data order, augmentation, dropout and (through <see cref="VitFinetuner.LoadForTask"/>) the head's initialisation.</summary>
    public ulong Seed { get; init; } = 1;
    /// <summary>Random crop (padding 2) and horizontal flip of training images, keyed by (seed, epoch, image).</summary>
    public bool Augment { get; init; } = true;
    /// <summary>Evaluate after every epoch (false: only after the last; studies that read only the final value).</summary>
    public bool EvaluateEveryEpoch { get; init; } = true;

    /// <summary>
    /// The quick CPU preset of the studies: a tiny ViT pre-trained for minutes is far from the
    /// converged ViT-B the paper fine-tunes at 2e-5, and at that rate a few hundred steps barely
    /// move it (the fresh head alone learns); lr 1e-3 was the best of the rates measured on
    /// Fashion-MNIST (docs/EXPERIMENTS-VISION-FINETUNE.md). Three epochs keep a study in minutes.
    /// </summary>
    public static VitFinetuneSettings Quick => new() { Epochs = 3, LearningRate = 1e-3f };

    public void Validate()
    {
        if (Epochs < 1) throw new ArgumentException($"epochs must be at least 1, got {Epochs}");
        if (BatchSize < 1) throw new ArgumentException($"the batch size must be positive, got {BatchSize}");
        if (!(LearningRate > 0) || float.IsInfinity(LearningRate)) throw new ArgumentException($"the learning rate must be positive and finite, got {LearningRate}");
        if (!(WeightDecay >= 0)) throw new ArgumentException($"weight decay must be non-negative, got {WeightDecay}");
        if (!(MaxGradNorm >= 0)) throw new ArgumentException($"the gradient clip must be non-negative (0: off), got {MaxGradNorm}");
        if (WarmupSteps < 0) throw new ArgumentException($"warm-up steps must be non-negative, got {WarmupSteps}");
        if (MaxSteps < 0) throw new ArgumentException($"max steps must be non-negative, got {MaxSteps}");
    }
}

/// <summary>
/// Fine-tunes a ViT with a classification head on an image task, optionally with a fixed keep mask
/// over the prunable matrices: the mask is applied once before training and given to AdamW, which
/// keeps pruned weights, their gradients and moments exactly +0. Batch order and augmentation are
/// functions of (seed, epoch, image index); the last batch of an epoch is run at its own size (a
/// second model shape shares the parameters), so no padding image enters the loss or the accuracy.
/// </summary>
public sealed class VitFinetuner : IDisposable
{
    private readonly IBackend _be;
    private readonly PatchBatcher _train, _eval;
    private readonly Dictionary<int, VitModel> _models = new();
    private readonly Tensor _m, _v, _gradNormSquared;
    private readonly Tensor? _keep;
    private readonly AdamWOptimizer _optimizer;

    public VitFinetuner(VitParameters parameters, VisionTask task, VitFinetuneSettings settings, MaskSet? mask = null)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        ArgumentNullException.ThrowIfNull(task);
        ArgumentNullException.ThrowIfNull(settings);
        settings.Validate();
        var cfg = parameters.Config;
        var layout = parameters.Layout;
        if (layout.Heads.ClassifierLabels != task.NumLabels)
            throw new ArgumentException($"the ViT's classifier has {layout.Heads.ClassifierLabels} labels, task '{task.Name}' needs {task.NumLabels}");
        if (task.Train.Height != cfg.ImageSize || task.Train.Width != cfg.ImageSize || task.Train.Channels != cfg.NumChannels)
            throw new ArgumentException($"task '{task.Name}' has {task.Train.Height}x{task.Train.Width}x{task.Train.Channels} images, " +
                                        $"the ViT expects {cfg.ImageSize}x{cfg.ImageSize}x{cfg.NumChannels}");
        Parameters = parameters; Task = task; Settings = settings;
        _be = parameters.Backend;
        _train = PatchBatcher.For(task.Train, cfg.PatchSize, task.Normalization, settings.Augment ? new Augmentation() : Augmentation.None);
        _eval = PatchBatcher.For(task.Train, cfg.PatchSize, task.Normalization, Augmentation.None);

        int total = checked((int)layout.TotalLength);
        int prunable = checked((int)layout.PrunableLength);
        _m = _be.Allocate(DType.F32, total); _be.Fill(_m, 0f);
        _v = _be.Allocate(DType.F32, total); _be.Fill(_v, 0f);
        _gradNormSquared = _be.Allocate(DType.F32, 1);
        if (mask != null)
        {
            if (mask.Set.Count != layout.PrunableLength)
                throw new ArgumentException($"the mask covers {mask.Set.Count} weights, the ViT's prunable span {layout.PrunableLength}");
            // Masks are built on the host; the optimizer needs the bytes where the weights live.
            var bytes = new byte[prunable];
            mask.Keep.Storage.Backend.CopyToHost<byte>(mask.Keep, bytes);
            _keep = _be.Allocate(DType.U8, prunable);
            _be.CopyFromHost<byte>(bytes, _keep);
            _be.ApplyMask(parameters.PrunableValues, _keep);
            PrunedCount = bytes.LongLength - bytes.Count(b => b != 0);
        }

        StepsPerEpoch = PatchBatcher.BatchCount(task.Train.Count, settings.BatchSize);
        TotalSteps = (long)StepsPerEpoch * settings.Epochs;
        if (settings.MaxSteps > 0) TotalSteps = Math.Min(TotalSteps, settings.MaxSteps);
        _optimizer = new AdamWOptimizer(parameters.OptimizerSegments(_m, _v, _keep),
            LearningRateSchedule.LinearWarmupDecay(settings.LearningRate, Math.Min(settings.WarmupSteps, TotalSteps), TotalSteps),
            epsilon: settings.AdamEpsilon, weightDecay: settings.WeightDecay, maxGradNorm: settings.MaxGradNorm);
    }

    public VitParameters Parameters { get; }
    public VisionTask Task { get; }
    public VitFinetuneSettings Settings { get; }
    public int StepsPerEpoch { get; }
    public long TotalSteps { get; }
    public long Step => _optimizer.Step;

    /// <summary>Weights the mask prunes (0 without a mask).</summary>
    public long PrunedCount { get; }

    /// <summary>
    /// Loads a ViT checkpoint folder (ours or Hugging Face's, any heads) with a fresh
    /// <paramref name="labels"/>-way classifier initialised from <paramref name="seed"/>: a classifier
    /// already in the file (a supervised pre-training's) is replaced too, so every fine-tuning of a
    /// checkpoint starts its head the same way whatever the checkpoint was trained for.
    /// </summary>
    public static VitParameters LoadForTask(string folder, IBackend backend, int labels, ulong seed)
    {
        var heads = VitHeads.Classification(labels);
        var (p, report) = VitCheckpoint.Load(folder, backend, heads, seed);
        if (report.Loaded.Any(n => n.StartsWith(VitParameterLayout.Classifier + ".", StringComparison.Ordinal)))
        {
            using var fresh = new VitParameters(new CpuBackend(), p.Layout);
            fresh.Initialize(seed);
            foreach (string name in new[] { VitParameterLayout.Classifier + ".weight", VitParameterLayout.Classifier + ".bias" })
                backend.CopyFromHost<float>(fresh[name].F32Span(), p[name]);
        }
        return p;
    }

    /// <summary>Trains every epoch (or up to MaxSteps), evaluating on the validation split after each (or the last).</summary>
    public IReadOnlyList<FinetuneEpoch> Train(Action<FinetuneStep>? onStep = null, Action<FinetuneEpoch>? onEpoch = null)
    {
        var results = new List<FinetuneEpoch>();
        var cfg = Parameters.Config;
        for (int epoch = 0; epoch < Settings.Epochs && Step < TotalSteps; epoch++)
        {
            var clock = System.Diagnostics.Stopwatch.StartNew();
            double lossSum = 0; long steps = 0;
            foreach (var vb in _train.Epoch(Task.Train, Settings.BatchSize, Settings.Seed, epoch, augment: Settings.Augment))
            {
                if (Step >= TotalSteps) break;
                long step = Step;
                var model = ModelFor(vb.BatchSize);
                var batch = ToVitBatch(vb, cfg);
                batch.Labels = vb.Labels;
                Parameters.ZeroGrads();
                var dropout = new DropoutPlan(true, Settings.Seed, step, cfg.HiddenDropoutProb, cfg.AttentionProbsDropoutProb);
                double loss;
                try { loss = model.Forward(batch, dropout); }
                catch (ArithmeticException) { throw new TrainingDivergedException(step + 1, double.NaN); }
                model.Backward();
                TrainingStep.Finish(_be, Parameters.Grads, _gradNormSquared, _optimizer, loss, 1, clock);
                lossSum += loss; steps++;
                onStep?.Invoke(new FinetuneStep(Step, TotalSteps, epoch + 1, loss, _optimizer.LastLearningRate));
            }
            bool last = epoch == Settings.Epochs - 1 || Step >= TotalSteps;
            var metrics = Settings.EvaluateEveryEpoch || last
                ? new Dictionary<string, double> { [VisionTask.Metric] = Accuracy(Task.Validation) }
                : new Dictionary<string, double>();
            var r = new FinetuneEpoch(epoch + 1, Step, steps == 0 ? double.NaN : lossSum / steps, metrics, clock.Elapsed.TotalSeconds);
            results.Add(r);
            onEpoch?.Invoke(r);
        }
        return results;
    }

    /// <summary>Top-1 accuracy on the validation split (no augmentation, dropout off).</summary>
    public double Evaluate() => Accuracy(Task.Validation);

    /// <summary>Top-1 accuracy on the test split.</summary>
    public double Test() => Accuracy(Task.Test ?? throw new InvalidOperationException($"task '{Task.Name}' has no test split"));

    /// <summary>Top-1 accuracy on <paramref name="images"/> (no augmentation, dropout off); every image counts once.</summary>
    public double Accuracy(LabeledImages images)
    {
        ArgumentNullException.ThrowIfNull(images);
        if (images.Count == 0) return double.NaN;
        long correct = 0;
        foreach (var vb in _eval.Epoch(images, Settings.BatchSize, seed: 0, epoch: 0, augment: false, shuffle: false))
        {
            var model = ModelFor(vb.BatchSize);
            model.Forward(ToVitBatch(vb, Parameters.Config), DropoutPlan.Off);
            var predicted = model.PredictedLabels();
            for (int i = 0; i < vb.BatchSize; i++) if (predicted[i] == vb.Labels[i]) correct++;
        }
        return (double)correct / images.Count;
    }

    /// <summary>
    /// The batcher's patches in the ViT's element order: the batcher writes a patch as (y, x, c),
    /// the ViT reads it as (c, y, x); the two agree for one channel.
    /// </summary>
    internal static VitBatch ToVitBatch(VisionBatch vb, VitConfig cfg)
    {
        if (vb.PatchCount != cfg.NumPatches || vb.PatchDim != cfg.PatchDim)
            throw new ArgumentException($"batch of {vb.PatchCount} patches x {vb.PatchDim}, the ViT expects {cfg.NumPatches} x {cfg.PatchDim}");
        var batch = new VitBatch(cfg, vb.BatchSize);
        int channels = cfg.NumChannels;
        if (channels == 1) vb.Patches.CopyTo(batch.Patches, 0);
        else
        {
            int pixels = cfg.PatchSize * cfg.PatchSize, dim = cfg.PatchDim;
            for (int row = 0; row < vb.Rows; row++)
                for (int c = 0; c < channels; c++)
                    for (int k = 0; k < pixels; k++)
                        batch.Patches[row * dim + c * pixels + k] = vb.Patches[row * dim + k * channels + c];
        }
        return batch;
    }

    private VitModel ModelFor(int batch)
    {
        if (!_models.TryGetValue(batch, out var model))
        {
            model = new VitModel(Parameters, batch);
            _models[batch] = model;
        }
        return model;
    }

    public void Dispose()
    {
        foreach (var m in _models.Values) m.Dispose();
        _models.Clear();
        _m.Storage.Dispose(); _v.Storage.Dispose(); _gradNormSquared.Storage.Dispose();
        _keep?.Storage.Dispose();
    }
}
