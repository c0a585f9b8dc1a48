using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using NativeSparsity.Engine.Backends;
using NativeSparsity.Engine.Backends.Cpu;
using NativeSparsity.Engine.Sparsity;
using NativeSparsity.Experiments.Commands;
using NativeSparsity.Experiments.Reporting;
using NativeSparsity.Experiments.Training;
using NativeSparsity.Models.Vit;

namespace NativeSparsity.Experiments.Vision;

/// <summary>Which Fashion-MNIST images a ViT fine-tuning uses (0 per class: the whole split).</summary>
public sealed record VitDataOptions
{
    /// <summary>Folder with the four IDX files (null: where FashionMnist.Load looks).</summary>
    public string? DataFolder { get; init; }
    public int TrainPerClass { get; init; }
    public int ValidationPerClass { get; init; }
    public int TestPerClass { get; init; }
    /// <summary>Seed of the train/validation split and of the per-class subsampling (fixed across fine-tuning seeds).</summary>
    public ulong SplitSeed { get; init; }

    public VisionTask Load(string task)
    {
        if (!string.Equals(task, VisionTask.FashionMnistName, StringComparison.OrdinalIgnoreCase))
            throw new ArgumentException($"--task: a ViT fine-tunes on '{VisionTask.FashionMnistName}', not '{task}'");
        return VisionTask.FashionMnist(DataFolder, TrainPerClass, ValidationPerClass, TestPerClass, SplitSeed);
    }

    public JsonObject ToJson() => new()
    {
        ["data_dir"] = DataFolder == null ? null : Path.GetFullPath(DataFolder),
        ["train_per_class"] = TrainPerClass, ["validation_per_class"] = ValidationPerClass, ["test_per_class"] = TestPerClass,
        ["split_seed"] = SplitSeed.ToString(CultureInfo.InvariantCulture),
    };
}

/// <summary>`nsparse finetune` on a ViT checkpoint: the same flow and output files as for a BERT.</summary>
public static class VitFinetuneRun
{
    /// <summary>True when the folder's config.json says "model_type": "vit" (as VitConfig.ToJson and Hugging Face write).</summary>
    public static bool IsVitCheckpoint(string folder)
    {
        string path = Path.Combine(folder, VitCheckpoint.ConfigFile);
        if (!File.Exists(path)) return false;
        try { return JsonNode.Parse(File.ReadAllText(path))?["model_type"] is JsonValue v && v.TryGetValue(out string? s) && s == "vit"; }
        catch (JsonException) { return false; }
    }

    /// <summary>The prunable set over a host copy of the parameters (the same tensor when they already live on the CPU).</summary>
    public static PrunableSet HostPrunableSet(VitParameters parameters, CpuBackend host) =>
        FinetuneCommand.HostPrunableSet(parameters.PrunableSet(), parameters.Backend, host);

    /// <summary>Runs the fine-tuning; <paramref name="task"/> overrides loading o.Task (tests).</summary>
    public static FinetuneCommand.Result Run(FinetuneRunOptions o, VisionTask? task = null)
    {
        Action<string> say = o.Quiet ? _ => { } : Console.WriteLine;
        if (!Directory.Exists(o.Checkpoint)) throw new DirectoryNotFoundException($"--checkpoint: no folder '{o.Checkpoint}'");
        task ??= o.VitData.Load(o.Task);
        say($"task {task.Name}: {task.Train.Count} train, {task.Validation.Count} validation, {task.Test?.Count ?? 0} test images, {task.NumLabels} classes; " +
            $"majority baseline {task.MajorityBaseline(task.Validation):P1}");
        using var backend = BackendFactory.Create(o.Device, out string backendName, o.Threads);
        var host = new CpuBackend();
        using var parameters = VitFinetuner.LoadForTask(o.Checkpoint, backend, task.NumLabels, o.VitTrain.Seed);
        MaskSet? mask;
        if (o.MaskPath != null) mask = FinetuneCommand.LoadMask(o.MaskPath, HostPrunableSet(parameters, host), host, o.Sparsity);
        else mask = FinetuneCommand.MaskFor(HostPrunableSet(parameters, host), o.Sparsity);
        if (mask != null && o.SaveMaskPath != null)
        {
            MaskFile.Save(o.SaveMaskPath, mask);
            say($"mask: {o.SaveMaskPath}");
        }
        var layout = parameters.Layout;
        say($"device: {backendName}; ViT {layout.ParameterCount:N0} parameters, {layout.PrunableLength:N0} prunable" + (mask != null ? $"; {mask.Description}" : "; dense"));
        using var tuner = new VitFinetuner(parameters, task, o.VitTrain, mask);
        var progress = new ProgressLine(tuner.TotalSteps);
        double recent = double.NaN;
        var epochs = tuner.Train(
            s =>
            {
                recent = double.IsNaN(recent) ? s.Loss : 0.9 * recent + 0.1 * s.Loss;
                if (!o.Quiet) progress.Update(s.Step, $"epoch {s.Epoch} loss {recent:F4} lr {s.LearningRate:0.##e0}");
            },
            e => { if (!o.Quiet) progress.Message($"epoch {e.Epoch}: train loss {e.TrainLoss:F4}, {FinetuneCommand.FormatMetrics(e.Metrics)} ({e.Seconds:F1}s)"); });
        if (!o.Quiet) progress.Finish();
        double test = task.Test != null ? tuner.Test() : double.NaN;
        if (task.Test != null) say(string.Create(CultureInfo.InvariantCulture, $"test accuracy {test:F4} ({task.Test.Count} images)"));
        if (o.OutputFolder != null)
        {
            Directory.CreateDirectory(o.OutputFolder);
            WriteMetrics(o, task, tuner, epochs, test, backendName);
            if (o.Save)
            {
                string folder = Path.Combine(o.OutputFolder, "checkpoint");
                double sparsity = (double)tuner.PrunedCount / layout.PrunableLength;
                VitCheckpoint.Save(folder, parameters, new Dictionary<string, string> { ["task"] = task.Name, ["sparsity"] = sparsity.ToString("R", CultureInfo.InvariantCulture) }, compress: o.Compress);
                say($"checkpoint: {folder}");
            }
            say($"metrics: {Path.Combine(o.OutputFolder, "metrics.json")}");
        }
        return new FinetuneCommand.Result(epochs, tuner.PrunedCount, layout.PrunableLength, backendName, test);
    }

    private static void WriteMetrics(FinetuneRunOptions o, VisionTask task, VitFinetuner tuner, IReadOnlyList<FinetuneEpoch> epochs, double test, string backend)
    {
        var inv = CultureInfo.InvariantCulture;
        var json = new JsonObject
        {
            ["checkpoint"] = Path.GetFullPath(o.Checkpoint),
            ["model"] = "vit",
            ["task"] = task.Name,
            ["evaluation_split"] = "validation",
            ["train_examples"] = task.Train.Count,
            ["eval_examples"] = task.Validation.Count,
            ["test_examples"] = task.Test?.Count ?? 0,
            ["majority_baseline"] = task.MajorityBaseline(task.Validation),
            ["test_accuracy"] = double.IsFinite(test) ? test : null,
            ["sparsity"] = (double)tuner.PrunedCount / tuner.Parameters.Layout.PrunableLength,
            ["mask_file"] = o.MaskPath == null ? null : Path.GetFullPath(o.MaskPath),
            ["pruned"] = tuner.PrunedCount,
            ["prunable"] = tuner.Parameters.Layout.PrunableLength,
            ["backend"] = backend,
            ["data"] = o.VitData.ToJson(),
            ["settings"] = SettingsJson.ToNode(o.VitTrain),
            ["epochs"] = new JsonArray(epochs.Select(e => (JsonNode)new JsonObject
            {
                ["epoch"] = e.Epoch, ["steps"] = e.Steps, ["train_loss"] = double.IsFinite(e.TrainLoss) ? e.TrainLoss : null, ["seconds"] = e.Seconds,
                ["metrics"] = new JsonObject(e.Metrics.Select(kv => KeyValuePair.Create(kv.Key, double.IsFinite(kv.Value) ? (JsonNode?)JsonValue.Create(kv.Value) : null))),
            }).ToArray()),
        };
        File.WriteAllText(Path.Combine(o.OutputFolder!, "metrics.json"), json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        var csv = new StringBuilder($"epoch,steps,train_loss,seconds,{VisionTask.Metric}\n");
        foreach (var e in epochs)
            csv.Append(string.Join(",", e.Epoch.ToString(inv), e.Steps.ToString(inv), e.TrainLoss.ToString("R", inv), e.Seconds.ToString("F3", inv),
                (e.Metrics.TryGetValue(VisionTask.Metric, out var v) ? v : double.NaN).ToString("R", inv))).Append('\n');
        File.WriteAllText(Path.Combine(o.OutputFolder!, "metrics.csv"), csv.ToString());
    }
}
