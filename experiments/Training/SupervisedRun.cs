using System.Text.Json;
using NativeSparsity.Engine.Backends;
using NativeSparsity.Experiments.Reporting;
using NativeSparsity.Experiments.Tasks;
using NativeSparsity.Models.Bert;
using NativeSparsity.Engine.IO;

namespace NativeSparsity.Experiments.Training;

/// <summary>
/// A supervised pre-training run: the architecture, tokenizer data, optimizer, probe and checkpoint
/// settings of <see cref="Run"/> (its OutputFolder is this run's folder), trained on a WordNet
/// classification task instead of MLM.
/// </summary>
public sealed record SupervisedRunOptions
{
    public required PretrainRunOptions Run { get; init; }

    /// <summary>A WordNet task (<see cref="WordNetTasks.Names"/>); supersense = gloss → lexicographer file.</summary>
    public string Task { get; init; } = "supersense";

    /// <summary>Cap on examples per split (0 = all).</summary>
    public int MaxExamplesPerSplit { get; init; }
}

/// <summary>
/// A supervised pre-training run in a folder, laid out like <see cref="PretrainRun"/>'s:
/// run.json, train_log.csv, probe.csv/probe_layers.csv/probe.jsonl (the probe's "accuracy" is the
/// task's dev accuracy) and checkpoints/step-NNNNNNN, resumable bit for bit. The text is tokenized
/// with the compact BPE vocabulary of the MLM data of the same options, so both objectives share
/// the embedding table's shape.
/// </summary>
public static class SupervisedRun
{
    public static PretrainRunSummary Run(SupervisedRunOptions so, Action<string>? log = null)
    {
        var o = so.Run;
        Action<string> say = log ?? (o.Quiet ? _ => { } : Console.WriteLine);
        using var folderLock = FolderLock.Acquire(o.OutputFolder, "pretrain (supervised)");
        string checkpoints = Path.Combine(o.OutputFolder, PretrainRun.CheckpointsFolder);
        string settingsPath = Path.Combine(o.OutputFolder, "run.json");
        string settingsJson = SettingsJson.ToIndentedString(so with { Run = o with { Resume = false, Quiet = false } });
        string? resumeFrom = o.Resume ? PretrainRun.LatestCheckpoint(checkpoints) : null;
        if (resumeFrom != null && File.Exists(settingsPath) && File.ReadAllText(settingsPath) != settingsJson)
            throw new InvalidOperationException($"{settingsPath}: the run in this folder used other settings; resume with the same options or use another folder");
        if (resumeFrom == null && !o.Resume && Directory.Exists(checkpoints) && Directory.EnumerateDirectories(checkpoints).Any())
            throw new InvalidOperationException($"{o.OutputFolder} already holds checkpoints; resume that run or choose another folder");
        File.WriteAllText(settingsPath, settingsJson);

        using var backend = BackendFactory.Create(o.Device, out string backendName, o.Threads);
        say($"device: {backendName}");
        var tokenizer = TokenizerOf(o, say);
        var task = WordNetTasks.Build(so.Task, new WordNetTaskOptions(MaxExamplesPerSplit: so.MaxExamplesPerSplit));
        if (task.IsRegression) throw new ArgumentException($"task '{so.Task}' is a regression task; supervised pre-training needs classes");
        var encoder = new TaskEncoder(tokenizer, o.Train.SequenceLength);
        var train = encoder.Encode(task.Train);
        var dev = encoder.Encode(task.Dev);
        say($"task: {task.Name}, {task.NumLabels} classes, {train.Length} training and {dev.Length} {task.EvaluationSplit} examples " +
            $"(majority baseline {task.MajorityBaseline(task.EvaluationSplit):P1})");

        var cfg = PretrainRun.ConfigFor(o, tokenizer.VocabSize);
        using var parameters = new BertParameters(backend, new BertParameterLayout(cfg, BertHeads.SequenceClassification(task.NumLabels)));
        parameters.Initialize(o.Train.Seed);
        say($"model: {o.Preset} ({cfg.NumHiddenLayers} layers, hidden {cfg.HiddenSize}, {cfg.NumAttentionHeads} heads), " +
            $"{parameters.Layout.ParameterCount:N0} parameters, {parameters.Layout.PrunableLength:N0} prunable");
        using var trainer = new SupervisedPretrainer(backend, parameters, o.Train, encoder, train, dev);
        using var probe = new SparsityProbe(parameters, () => trainer.Step, trainer.EvaluateHeldOut, o.Probe);
        var probeLog = new ProbeLog(o.OutputFolder, o.Probe.Levels);
        var trainLog = new TrainLog(Path.Combine(o.OutputFolder, "train_log.csv"));
        ProbedTrainingLoop.Restore(trainer, resumeFrom, probeLog, trainLog, say);
        say($"training {o.Train.Steps} steps of {o.Train.BatchSize}x{o.Train.SequenceLength} tokens; probe every {o.Probe.Every} steps");

        return ProbedTrainingLoop.Run(trainer, probe, probeLog, trainLog, o, checkpoints, resumeFrom, tmp => tokenizer.Save(tmp), $"{task.EvaluationSplit} acc", backendName, say);
    }

    /// <summary>The compact BPE tokenizer of the MLM data these options describe (prepared once, then cached).</summary>
    private static NativeSparsity.Models.Text.CompactBpeTokenizer TokenizerOf(PretrainRunOptions o, Action<string> say)
    {
        using var data = PretrainRun.PrepareData(o, say);
        return data.Tokenizer;
    }
}
