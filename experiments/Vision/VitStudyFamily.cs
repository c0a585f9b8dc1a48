using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using NativeSparsity.Engine.Backends;
using NativeSparsity.Engine.Backends.Cpu;
using NativeSparsity.Engine.Sparsity;
using NativeSparsity.Experiments.Studies;
using NativeSparsity.Experiments.Training;
using NativeSparsity.Models.Vision;
using NativeSparsity.Models.Vit;
using NativeSparsity.Experiments.Reporting;

namespace NativeSparsity.Experiments.Vision;

/// <summary>
/// The ViT side of a fine-tuning study. The defaults are the quick CPU preset: 100 training, 50
/// validation and 100 test images per class (1,000 / 500 / 1,000), <see cref="VitFinetuneSettings.Quick"/>.
/// </summary>
public sealed record VitStudySettings
{
    public VitDataOptions Data { get; init; } = new() { TrainPerClass = 100, ValidationPerClass = 50, TestPerClass = 100 };
    public VitFinetuneSettings Train { get; init; } = VitFinetuneSettings.Quick;
    /// <summary>How to pre-train when the study has no checkpoint (OutputFolder and Resume are set by the study).</summary>
    public VitPretrainRunOptions Pretrain { get; init; } = new() { OutputFolder = "" };
    /// <summary>A task given as an object (tests); replaces loading Fashion-MNIST with <see cref="Data"/>.</summary>
    public VisionTask? Task { get; init; }
    /// <summary>The logistic-regression baseline the report sets beside the ViT.</summary>
    public PixelBaselineOptions Baseline { get; init; } = new(Epochs: 10, BatchSize: 64, LearningRate: 1e-3f);
}

/// <summary>The ViT family of the essential study: one image task, <see cref="VitFinetuner"/>, test accuracy and the pixel baseline.</summary>
internal sealed class VitStudyFamily : IStudyFamily
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;
    public const string TestMetric = "test_accuracy";
    private readonly EssentialStudyOptions _o;
    private readonly VisionTask _task;
    private VitParameters? _pretrained;

    private VitStudyFamily(EssentialStudyOptions o, string checkpoint, VisionTask task)
    {
        _o = o; Checkpoint = checkpoint; _task = task;
        Tasks = new[] { new StudyTask(task.Name, VisionTask.Metric, task.MajorityBaseline(task.Validation), task.Train.Count, task.Validation.Count) };
    }

    /// <summary>The checkpoint (given, or pre-trained once into the cache), the settings guard and the task.</summary>
    public static VitStudyFamily Open(EssentialStudyOptions o, Action<string> say)
    {
        Directory.CreateDirectory(o.ReportFolder);
        if (o.Checkpoint != null && !Directory.Exists(o.Checkpoint)) throw new DirectoryNotFoundException($"--checkpoint: no folder '{o.Checkpoint}'");
        string checkpoint = o.Checkpoint ?? PretrainOrReuse(o, say);
        if (!VitFinetuneRun.IsVitCheckpoint(checkpoint))
            throw new ArgumentException($"--model vit: '{checkpoint}' is not a ViT checkpoint (its config.json lacks \"model_type\": \"vit\")");
        o.Vit.Train.Validate();
        var task = o.Vit.Task ?? o.Vit.Data.Load(VisionTask.FashionMnistName);
        var data = o.Vit.Task == null ? o.Vit.Data.ToJson()
            : new JsonObject { ["task"] = task.Name, ["train"] = task.Train.Count, ["validation"] = task.Validation.Count, ["test"] = task.Test?.Count ?? 0 };
        EssentialStudy.CheckSettings(o, new JsonObject
        {
            ["model"] = "vit",
            ["checkpoint"] = Path.GetFullPath(checkpoint),
            ["fine_tuning"] = SettingsJson.ToNode(o.Vit.Train with { EvaluateEveryEpoch = false }),
            ["data"] = data,
        });
        say($"task {task.Name}: {task.Train.Count} train, {task.Validation.Count} validation, {task.Test?.Count ?? 0} test images");
        return new VitStudyFamily(o, checkpoint, task);
    }

    /// <summary>Pre-trains the quick ViT once into the cache folder (VitPretrainRun), or reuses it when finished.</summary>
    private static string PretrainOrReuse(EssentialStudyOptions o, Action<string> say)
    {
        var template = o.Vit.Pretrain;
        string objective = template.Objective == VitObjective.MaskedPatches ? "mim" : "sl";
        // Keyed by every pre-training setting, so a run asking for another model never reuses this one.
        string hash = EssentialStudy.HashOf(template with { OutputFolder = "", Device = "", Threads = 0, Quiet = false, Resume = false });
        string folder = o.PretrainFolder ?? Path.Combine(PretrainRun.DefaultCacheFolder, "pretrained",
            string.Create(Inv, $"essential-vit-{objective}-{template.Preset}-p{template.PatchSize}-{template.Train.Steps}steps-seed{template.Train.Seed}-{hash}"));
        string last = Path.Combine(folder, PretrainRun.CheckpointsFolder, $"step-{template.Train.Steps:D7}");
        if (Directory.Exists(last))
        {
            say($"pre-trained ViT found: {last}");
            return last;
        }
        say($"no --checkpoint: pre-training a {template.Preset} ViT ({template.Objective}) into {folder} (reused by later runs)");
        return VitPretrainRun.Run(template with { OutputFolder = folder, Resume = true, Quiet = o.Quiet }, o.Quiet ? null : Console.WriteLine, waitForFolder: true).LastCheckpoint;
    }

    public string ModelName => "ViT";
    public string Checkpoint { get; }
    public IReadOnlyList<StudyTask> Tasks { get; }
    public ulong BaseSeed => _o.Vit.Train.Seed;
    public string EvalSplit => "validation";

    public PrunableSet PretrainedPrunableSet()
    {
        _pretrained ??= VitCheckpoint.Load(Checkpoint, new CpuBackend(), VitHeads.Classification(_task.NumLabels)).Parameters;
        return _pretrained.PrunableSet();
    }

    public EssentialCell Finetune(IBackend backend, StudyTask task, string kind, double level, int seedIndex, MaskSet? mask, Action<FinetuneStep> onStep)
    {
        ulong seed = _o.Vit.Train.Seed + (ulong)seedIndex;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        using var parameters = VitFinetuner.LoadForTask(Checkpoint, backend, _task.NumLabels, seed);
        using var tuner = new VitFinetuner(parameters, _task, _o.Vit.Train with { Seed = seed, EvaluateEveryEpoch = false }, mask);
        var epochs = tuner.Train(onStep);
        var last = epochs[^1];
        var metrics = new Dictionary<string, double>(last.Metrics);
        // The dense model's test accuracy goes into the report; pruned cells skip the extra pass.
        if (mask == null && _task.Test != null) metrics[TestMetric] = tuner.Test();
        return new EssentialCell(_task.Name, kind, level, seedIndex, seed, VisionTask.Metric, metrics[VisionTask.Metric], last.TrainLoss,
            tuner.PrunedCount, clock.Elapsed.TotalSeconds, metrics);
    }

    public string SettingsParagraph(double[] levels)
    {
        var tr = _o.Vit.Train;
        return $"Fine-tuning: AdamW lr {tr.LearningRate:G4}, batch {tr.BatchSize}, {tr.Epochs} epochs, weight decay {tr.WeightDecay:G4}, " +
               $"{(tr.WarmupSteps > 0 ? $"{tr.WarmupSteps} warm-up steps" : "no warm-up")}, linear decay to 0, eps {tr.AdamEpsilon:G3}, gradient clip {tr.MaxGradNorm:G3}" +
               $"{(tr.MaxSteps > 0 ? $", at most {tr.MaxSteps} steps" : "")}; {(tr.Augment ? "random crop (padding 2) and horizontal flip" : "no augmentation")}; " +
               $"a fresh 10-way head; {_o.Seeds} seed{(_o.Seeds > 1 ? "s" : "")} from {tr.Seed} (data order, augmentation, head initialisation); " +
               $"{_task.Train.Count} training, {_task.Validation.Count} validation and {_task.Test?.Count ?? 0} test images" +
               $"{(_o.Vit.Task == null ? " (Fashion-MNIST: training and validation from the official training set, stratified; test from the official test set)" : "")}; " +
               $"levels {string.Join(", ", levels.Select(l => l.ToString("P0", Inv)))}{(_o.Random ? "; random pruning at the same levels as a baseline" : "")}.";
    }

    public string MetricSentence => "top-1 accuracy on the validation split after the last epoch";

    /// <summary>Dense test accuracy beside the pixel baseline's and the majority class's on the same images.</summary>
    public void AppendFindings(StringBuilder md, IReadOnlyList<EssentialCell> cells)
    {
        var test = cells.Where(c => c.Kind == EssentialStudy.Dense && c.Metrics.ContainsKey(TestMetric)).Select(c => c.Metrics[TestMetric]).ToArray();
        var normalise = _task.Normalization;
        var baseline = PixelBaseline.Train(normalise.Normalize(_task.Train), _task.Train.Labels, _task.NumLabels, _o.Vit.Baseline);
        double baseVal = baseline.Accuracy(normalise.Normalize(_task.Validation), _task.Validation.Labels);
        double baseTest = _task.Test != null ? baseline.Accuracy(normalise.Normalize(_task.Test), _task.Test.Labels) : double.NaN;
        var dense = cells.Where(c => c.Kind == EssentialStudy.Dense).Select(c => c.Value).ToArray();
        string Pct(double v) => double.IsNaN(v) ? "-" : (100 * v).ToString("F1", Inv);
        string MeanStd(double[] v) => v.Length == 0 ? "-" : $"{Pct(v.Average())} ± {(100 * EssentialStudy.Std(v)).ToString("F1", Inv)}";
        var b = _o.Vit.Baseline;
        md.AppendLine($"Dense ViT against simple baselines on the same images (accuracy, %; the pixel baseline is logistic regression on the normalised pixels, " +
                      $"Adam lr {b.LearningRate:G3}, batch {b.BatchSize}, {b.Epochs} epochs, trained on the same {_task.Train.Count} training images):").AppendLine();
        md.AppendLine($"| model | validation ({_task.Validation.Count}) | test ({_task.Test?.Count ?? 0}) |");
        md.AppendLine("| --- | --- | --- |");
        md.AppendLine($"| fine-tuned ViT, dense (mean ± std over {dense.Length} seed{(dense.Length == 1 ? "" : "s")}) | {MeanStd(dense)} | {MeanStd(test)} |");
        md.AppendLine($"| pixel logistic regression | {Pct(baseVal)} | {Pct(baseTest)} |");
        md.AppendLine($"| majority class | {Pct(_task.MajorityBaseline(_task.Validation))} | {(_task.Test != null ? Pct(_task.MajorityBaseline(_task.Test)) : "-")} |");
        md.AppendLine();
    }

    public void Dispose() => _pretrained?.Dispose();
}
