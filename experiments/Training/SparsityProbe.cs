using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using NativeSparsity.Engine.Backends.Cpu;
using NativeSparsity.Engine.Sparsity;
using NativeSparsity.Engine.Tensors;
using NativeSparsity.Models.Bert;

namespace NativeSparsity.Experiments.Training;

/// <summary>The settings of the periodic sparsity probe.</summary>
public sealed record ProbeSettings
{
    /// <summary>Probe every this many optimizer steps (and at step 0 and the last step); 0 disables.</summary>
    public int Every { get; init; } = 100;

    /// <summary>OMP levels evaluated without fine-tuning.</summary>
    public IReadOnlyList<double> Levels { get; init; } = new[] { 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9 };

    /// <summary>
    /// Run the OMP part (an evaluation per level) only every this many steps, a multiple of
    /// <see cref="Every"/>; statistics are cheap, evaluations are not. 0: at every probe.
    /// </summary>
    public int OmpEvery { get; init; }

    /// <summary>Held-out batches per evaluation.</summary>
    public int EvalBatches { get; init; } = 4;

    /// <summary>Accuracy drop (fraction, 0.01 = one point) tolerated by the probe essential sparsity.</summary>
    public double Epsilon { get; init; } = 0.01;
}

/// <summary>One probe of the prunable set at one step.</summary>
public sealed record ProbeRecord(
    long Step, double Seconds, MlmEvaluation Dense, IReadOnlyList<(double Sparsity, MlmEvaluation Eval)> Pruned,
    double ProbeEssentialSparsity, SparsityReport Statistics)
{
    /// <summary>Total-scope count of one criterion (exact_zero, abs_below with threshold, rel_std_below with factor).</summary>
    public long Total(string criterion, double value = 0) => Statistics.Counts.First(r =>
        r.Scope == "total" && r.Criterion == criterion &&
        (criterion == "exact_zero" || (criterion == "abs_below" ? Math.Abs(r.Threshold - value) <= 1e-6 * value : r.Factor == value))).Count;
}

/// <summary>
/// The periodic probe of a pre-training run: sparsity statistics of the prunable set (exact zeros,
/// counts under absolute and std-relative thresholds, per layer and overall, the global |w|
/// thresholds at 10..90%, which are also the |w| quantiles), and an OMP probe without fine-tuning:
/// held-out MLM loss and accuracy after pruning the current weights at each level, then restoring
/// them. "Probe essential sparsity" is the largest level whose accuracy stays within epsilon of
/// the unpruned model's.
/// </summary>
public sealed class SparsityProbe : IDisposable
{
    private readonly PrunableSet _set;
    private readonly Func<long> _step;
    private readonly Func<int, MlmEvaluation> _evaluate;
    private readonly TensorArena _arena;
    private readonly Tensor _backup, _keep;
    // Statistics and thresholds run on the host; on a device backend the span is copied here first.
    private readonly CpuBackend? _host;
    private readonly Tensor? _hostSpan, _hostKeep;

    public SparsityProbe(BertPretrainer trainer, ProbeSettings settings)
        : this(trainer.Parameters, () => trainer.Step, trainer.EvaluateHeldOut, settings) { }

    public SparsityProbe(BertParameters parameters, Func<long> step, Func<int, MlmEvaluation> evaluate, ProbeSettings settings)
        : this(parameters.PrunableSet(), step, evaluate, settings) { }

    /// <summary>
    /// A probe of any model whose prunable weights are <paramref name="set"/> (a view of its live
    /// parameter buffer): <paramref name="evaluate"/> measures the model's own task on its held-out
    /// data (given the number of evaluation batches) with the current weights.
    /// </summary>
    public SparsityProbe(PrunableSet set, Func<long> step, Func<int, MlmEvaluation> evaluate, ProbeSettings settings)
    {
        _set = set; _step = step; _evaluate = evaluate;
        Settings = settings;
        int count = checked((int)set.Count);
        _arena = new TensorArena(set.Span.Storage.Backend);
        _backup = _arena.F32(count);
        _keep = _arena.Allocate(DType.U8, count);
        if (set.Span.Storage is not CpuStorage)
        {
            _host = new CpuBackend();
            _hostSpan = _host.Allocate(DType.F32, count);
            _hostKeep = _host.Allocate(DType.U8, count);
        }
    }

    public ProbeSettings Settings { get; }

    public bool IsDue(long step, long lastStep) =>
        Settings.Every > 0 && (step == 0 || step == lastStep || step % Settings.Every == 0);

    /// <summary>Whether the probe at this step also evaluates the OMP levels.</summary>
    public bool OmpDue(long step, long lastStep) =>
        Settings.OmpEvery <= 0 || step == 0 || step == lastStep || step % Settings.OmpEvery == 0;

    public ProbeRecord Run(bool withOmp = true)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var live = _set.Span;
        var be = live.Storage.Backend;
        var set = _set;
        if (_host != null)
        {
            be.CopyToHost(live, _hostSpan!.F32Span());
            set = new PrunableSet(_hostSpan!, set.Matrices);
        }
        var stats = SparsityStatistics.Compute(set, new SparsityStatisticsOptions { SweepSparsities = Settings.Levels });
        var pruned = new List<(double, MlmEvaluation)>();
        if (!withOmp)
            return new ProbeRecord(_step(), clock.Elapsed.TotalSeconds, new MlmEvaluation(double.NaN, double.NaN, 0), pruned, double.NaN, stats);
        var dense = _evaluate(Settings.EvalBatches);
        be.Copy(live, _backup);
        try
        {
            foreach (var threshold in stats.GlobalThresholds)
            {
                if (_host != null)
                {
                    GlobalMagnitudeThreshold.WriteKeepMask(set, threshold, _hostKeep!);
                    be.CopyFromHost<byte>(_hostKeep!.U8Span(), _keep);
                }
                else GlobalMagnitudeThreshold.WriteKeepMask(set, threshold, _keep);
                be.ApplyMask(live, _keep);
                pruned.Add((threshold.Sparsity, _evaluate(Settings.EvalBatches)));
                be.Copy(_backup, live);
            }
        }
        finally { be.Copy(_backup, live); }
        double essential = 0;
        foreach (var (s, e) in pruned.OrderBy(x => x.Item1))
        {
            if (dense.Accuracy - e.Accuracy <= Settings.Epsilon) essential = s;
            else break;
        }
        return new ProbeRecord(_step(), clock.Elapsed.TotalSeconds, dense, pruned, essential, stats);
    }

    public void Dispose()
    {
        _arena.Dispose();
        _hostSpan?.Storage.Dispose();
        _hostKeep?.Storage.Dispose();
    }
}

/// <summary>Appends probe records to probe.csv (one row per probe), probe_layers.csv and probe.jsonl.</summary>
public sealed class ProbeLog
{
    private readonly string _csv, _layers, _jsonl;
    private readonly IReadOnlyList<double> _levels;

    public ProbeLog(string folder, IReadOnlyList<double> levels)
    {
        _levels = levels;
        Directory.CreateDirectory(folder);
        _csv = Path.Combine(folder, "probe.csv");
        _layers = Path.Combine(folder, "probe_layers.csv");
        _jsonl = Path.Combine(folder, "probe.jsonl");
    }

    public string CsvPath => _csv;

    /// <summary>JSON has no NaN: a measurement that was not taken is null.</summary>
    private static JsonNode? J(double x) => double.IsFinite(x) ? JsonValue.Create(x) : null;

    private static string F(double x) => double.IsNaN(x) ? "" : x.ToString("R", CultureInfo.InvariantCulture);

    /// <summary>Drops records after <paramref name="step"/> (a resumed run rewrites what the interrupted one logged past its checkpoint).</summary>
    public void TruncateAfter(long step)
    {
        foreach (var path in new[] { _csv, _layers })
        {
            if (!File.Exists(path)) continue;
            var lines = File.ReadAllLines(path);
            File.WriteAllLines(path, lines.Take(1).Concat(lines.Skip(1).Where(l => long.Parse(l.Split(',')[0], CultureInfo.InvariantCulture) <= step)));
        }
        if (File.Exists(_jsonl))
            File.WriteAllLines(_jsonl, File.ReadAllLines(_jsonl).Where(l => (JsonNode.Parse(l)?["step"]?.GetValue<long>() ?? 0) <= step));
    }

    public void Append(ProbeRecord r)
    {
        var counts = r.Statistics.Counts.Where(c => c.Scope == "total").ToList();
        if (!File.Exists(_csv))
        {
            var header = new List<string> { "step", "probe_seconds", "dense_loss", "dense_accuracy", "probe_essential_sparsity", "total" };
            header.AddRange(counts.Select(ColumnName));
            header.AddRange(_levels.Select(l => $"threshold_{l * 100:0}"));
            header.AddRange(_levels.SelectMany(l => new[] { $"omp{l * 100:0}_loss", $"omp{l * 100:0}_accuracy" }));
            File.WriteAllText(_csv, string.Join(",", header) + "\n");
            File.WriteAllText(_layers, "step,scope,name,layer,criterion,factor,threshold,count,total,fraction\n");
        }
        var row = new List<string> { r.Step.ToString(CultureInfo.InvariantCulture), F(r.Seconds), F(r.Dense.Loss), F(r.Dense.Accuracy), F(r.ProbeEssentialSparsity),
            counts.Count > 0 ? counts[0].Total.ToString(CultureInfo.InvariantCulture) : "0" };
        row.AddRange(counts.Select(c => c.Count.ToString(CultureInfo.InvariantCulture)));
        row.AddRange(r.Statistics.GlobalThresholds.Select(t => F(t.Threshold)));
        row.AddRange(_levels.SelectMany(l =>
        {
            var hit = r.Pruned.Where(x => Math.Abs(x.Sparsity - l) < 1e-12).Select(x => x.Eval).ToList();
            return hit.Count == 0 ? new[] { "", "" } : new[] { F(hit[0].Loss), F(hit[0].Accuracy) };
        }));
        File.AppendAllText(_csv, string.Join(",", row) + "\n");
        File.AppendAllLines(_layers, r.Statistics.Counts.Where(c => c.Scope != "total").Select(c => $"{r.Step},{c.ToCsv()}"));
        var json = new JsonObject
        {
            ["step"] = r.Step, ["probe_seconds"] = J(r.Seconds),
            ["dense"] = new JsonObject { ["loss"] = J(r.Dense.Loss), ["accuracy"] = J(r.Dense.Accuracy), ["predictions"] = r.Dense.Predictions },
            ["probe_essential_sparsity"] = J(r.ProbeEssentialSparsity),
            ["omp"] = new JsonArray(r.Pruned.Select(x => (JsonNode)new JsonObject { ["sparsity"] = x.Sparsity, ["loss"] = J(x.Eval.Loss), ["accuracy"] = J(x.Eval.Accuracy) }).ToArray()),
            ["thresholds"] = new JsonArray(r.Statistics.GlobalThresholds.Select(t => (JsonNode)new JsonObject { ["sparsity"] = t.Sparsity, ["threshold"] = J(t.Threshold) }).ToArray()),
            ["counts"] = new JsonArray(r.Statistics.Counts.Select(c => (JsonNode)new JsonObject
            {
                ["scope"] = c.Scope, ["name"] = c.Name, ["layer"] = c.Layer, ["criterion"] = c.Criterion,
                ["factor"] = c.Factor, ["threshold"] = J(c.Threshold), ["count"] = c.Count, ["total"] = c.Total,
            }).ToArray()),
        };
        File.AppendAllText(_jsonl, json.ToJsonString() + "\n");
    }

    private static string ColumnName(SparsityCountRow c) => c.Criterion switch
    {
        "exact_zero" => "zeros",
        "abs_below" => $"abs_below_{c.Threshold.ToString("0.#####e0", CultureInfo.InvariantCulture)}",
        _ => $"rel_std_below_{c.Factor.ToString("R", CultureInfo.InvariantCulture)}",
    };
}
