using System.Text.Json;
using System.Text.Json.Nodes;
using NativeSparsity.Engine.Backends;
using NativeSparsity.Engine.IO;
using NativeSparsity.Engine.Optim;
using NativeSparsity.Engine.Tensors;
using NativeSparsity.Models.Bert;
using NativeSparsity.Experiments.Reporting;

namespace NativeSparsity.Experiments.Training;

/// <summary>Settings of a pre-training run (BERT's defaults: lr 1e-4, betas 0.9/0.999, wd 0.01).</summary>
public sealed record PretrainSettings
{
    public int BatchSize { get; init; } = 32;
    public int SequenceLength { get; init; } = 128;
    public int GradientAccumulation { get; init; } = 1;
    public long Steps { get; init; } = 1000;
    public float LearningRate { get; init; } = 1e-4f;
    public long WarmupSteps { get; init; } = 100;
    public float WeightDecay { get; init; } = 0.01f;
    public float MaxGradNorm { get; init; } = 1.0f;
    public ulong Seed { get; init; } = 1;
    public float MaskProbability { get; init; } = 0.15f;

    /// <summary>Add BERT's next-sentence prediction (sentence-pair rows, NSP head, loss summed with MLM).</summary>
    public bool NextSentence { get; init; }
}

/// <summary>What one optimizer step measured.</summary>
public readonly record struct PretrainStepResult(long Step, double Loss, float LearningRate, double GradNorm, double Seconds);

/// <summary>Held-out MLM quality.</summary>
public readonly record struct MlmEvaluation(double Loss, double Accuracy, int Predictions);

/// <summary>Thrown when the loss stops being finite; the last good checkpoint is left untouched.</summary>
public sealed class TrainingDivergedException(long step, double loss)
    : Exception($"training diverged at step {step}: the loss is {loss}; the last good checkpoint is kept")
{
    public long Step { get; } = step;
}

/// <summary>
/// MLM pre-training of a BERT: masking, forward/backward with gradient accumulation, global-norm
/// clipping and AdamW with warm-up and linear decay. Every batch, mask and dropout draw is a pure
/// function of (seed, step), so a run resumed from a checkpoint continues bit for bit.
/// </summary>
public sealed class BertPretrainer : IDisposable, IProbedTrainer
{
    public const string OptimizerFile = "optimizer.safetensors";
    public const string StateFile = "trainer_state.json";
    private const ulong EvalMaskSeed = 0x5eed_e7a1UL;

    private readonly IBackend _be;
    private readonly TokenWindows _windows;
    private readonly MlmMasking _masking;
    private readonly BertModel _model;
    private readonly Tensor _m, _v, _gradNormSquared;
    private readonly AdamWOptimizer _optimizer;

    public BertPretrainer(IBackend backend, BertParameters parameters, PretrainSettings settings, TokenWindows windows, MlmMasking masking)
    {
        if (windows.Seq != settings.SequenceLength)
            throw new ArgumentException($"token windows are {windows.Seq} long, settings say {settings.SequenceLength}");
        if (settings.GradientAccumulation < 1) throw new ArgumentException("gradient accumulation must be at least 1");
        _be = backend; Parameters = parameters; Settings = settings; _windows = windows; _masking = masking;
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
    public BertModel Model => _model;

    /// <summary>Optimizer steps completed.</summary>
    public long Step => _optimizer.Step;

    public PretrainStepResult TrainStep()
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        long step = _optimizer.Step;
        int accum = Settings.GradientAccumulation;
        Parameters.ZeroGrads();
        double loss = 0;
        var cfg = Parameters.Config;
        for (int micro = 0; micro < accum; micro++)
        {
            var batch = _windows.TrainBatch(step, micro, accum, Settings.BatchSize);
            _masking.Apply(batch, Settings.Seed, step * accum + micro);
            var dropout = new DropoutPlan(true, Settings.Seed, step * accum + micro, cfg.HiddenDropoutProb, cfg.AttentionProbsDropoutProb);
            double l = TrainingStep.ForwardBackward(_model, batch, dropout, step + 1);
            if (double.IsNaN(l)) continue;   // a micro-batch without masked tokens
            loss += l / accum;
        }
        return TrainingStep.Finish(_be, Parameters.Grads, _gradNormSquared, _optimizer, loss, accum, clock);
    }

    /// <summary>
    /// MLM loss and masked-token accuracy on the first <paramref name="batches"/> held-out batches,
    /// dropout off, with masks drawn from a fixed seed so every evaluation sees the same task.
    /// </summary>
    public MlmEvaluation EvaluateHeldOut(int batches)
    {
        double lossSum = 0; long correct = 0; int count = 0;
        int vocab = Parameters.Config.VocabSize;
        for (int i = 0; i < batches; i++)
        {
            var batch = _windows.HeldOutBatch(i, Settings.BatchSize);
            _masking.Apply(batch, EvalMaskSeed, i);
            int m = batch.MlmPositions.Length;
            if (m == 0) continue;
            _model.Forward(batch, DropoutPlan.Off);
            var losses = new float[m];
            _be.CopyToHost<float>(_model.MaskedLmLosses, losses);
            var logits = new float[(long)m * vocab];
            _be.CopyToHost<float>(_model.MaskedLmLogits, logits);
            for (int r = 0; r < m; r++)
            {
                lossSum += losses[r];
                var row = logits.AsSpan(r * vocab, vocab);
                int best = System.Numerics.Tensors.TensorPrimitives.IndexOfMax(row);
                if (best == batch.MlmLabels[r]) correct++;
            }
            count += m;
        }
        return count == 0 ? new MlmEvaluation(double.NaN, double.NaN, 0) : new MlmEvaluation(lossSum / count, (double)correct / count, count);
    }

    /// <summary>Writes a resumable checkpoint folder atomically.</summary>
    public void SaveCheckpoint(string folder, Action<string>? extraFiles = null)
    {
        var meta = new Dictionary<string, string> { ["step"] = Step.ToString() };
        BertCheckpoint.Save(folder, Parameters, meta, tmp =>
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
        BertCheckpoint.LoadWeights(folder, Parameters);
        string opt = Path.Combine(folder, OptimizerFile);
        using (var file = SafetensorsFile.Open(opt))
        {
            file.ReadInto("exp_avg", _m);
            file.ReadInto("exp_avg_sq", _v);
        }
        string statePath = Path.Combine(folder, StateFile);
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
