using System.Text.Json;
using System.Text.Json.Serialization;
using NativeSparsity.Engine.Backends;
using NativeSparsity.Experiments.Training;
using NativeSparsity.Models.Vision;
using NativeSparsity.Models.Vit;
using NativeSparsity.Experiments.Reporting;
using NativeSparsity.Engine.IO;

namespace NativeSparsity.Experiments.Vision;

/// <summary>How a ViT is pre-trained: supervised classification, or self-supervised masked patch prediction.</summary>
public enum VitObjective { Supervised, MaskedPatches }

/// <summary>
/// One ViT pre-training run on Fashion-MNIST in a folder, laid out like a BERT run
/// (checkpoints/step-NNNNNNN, train_log.csv, probe.csv, probe_layers.csv, probe.jsonl, run.json).
/// </summary>
public sealed record VitPretrainRunOptions
{
    public required string OutputFolder { get; init; }
    public VitObjective Objective { get; init; } = VitObjective.MaskedPatches;
    public string Device { get; init; } = "cpu";
    public int Threads { get; init; }
    /// <summary>ViT preset (tiny, small, base) at Fashion-MNIST's 28x28x1 with <see cref="PatchSize"/>.</summary>
    public string Preset { get; init; } = "tiny";
    public int PatchSize { get; init; } = 4;
    /// <summary>Override of the preset's number of encoder layers.</summary>
    public int? Layers { get; init; }
    /// <summary>Override of the preset's hidden size (heads = max(1, hidden/64), intermediate = 4 x hidden, as for BERT).</summary>
    public int? Hidden { get; init; }
    /// <summary>Folder with the four Fashion-MNIST IDX files (null: the usual places, see FashionMnist.Load).</summary>
    public string? DataFolder { get; init; }
    /// <summary>Fraction of the training split used (deterministic, stratified), as the abrupt study's data fractions.</summary>
    public double DataFraction { get; init; } = 1.0;
    /// <summary>Share of patches hidden per image for <see cref="VitObjective.MaskedPatches"/>.</summary>
    public double MaskRatio { get; init; } = 0.5;
    /// <summary>Optimizer and schedule; SequenceLength and MaskProbability are not used by a ViT.</summary>
    public PretrainSettings Train { get; init; } = new() { BatchSize = 64, LearningRate = 1e-3f, WarmupSteps = 50, WeightDecay = 0.05f };
    public ProbeSettings Probe { get; init; } = new();
    public int CheckpointEvery { get; init; } = 500;
    public int KeepLast { get; init; } = 2;
    public int KeepEvery { get; init; }
    public int LogEvery { get; init; } = 10;
    public bool Resume { get; init; }
    public bool Quiet { get; init; }
}

/// <summary>
/// A ViT pre-training run in a folder (see <see cref="VitPretrainRunOptions"/>): Fashion-MNIST's
/// training set split into train and a stratified validation part of <see cref="ValidationSize"/>
/// images, the train part cut to <see cref="VitPretrainRunOptions.DataFraction"/> (stratified,
/// deterministic), pixels normalised with the statistics of the whole train part (so every data
/// fraction sees the same pixel scale); probing, logs, checkpoints and resume as <see cref="PretrainRun"/>.
/// </summary>
public static class VitPretrainRun
{
    public const int ValidationSize = FashionMnist.DefaultValidationSize;
    /// <summary>Seed of the train/validation split: fixed, so runs with other seeds validate on the same images.</summary>
    public const ulong SplitSeed = 0;
    private const ulong FractionStreamBase = 0x5654_0003UL << 32; // + class

    /// <summary>Pre-trains (or resumes) into <see cref="VitPretrainRunOptions.OutputFolder"/>; LastCheckpoint is a VitCheckpoint folder.</summary>
    public static PretrainRunSummary Run(VitPretrainRunOptions o, Action<string>? log = null, bool waitForFolder = false) => Run(o, null, log, waitForFolder);

    /// <summary>
    /// As <see cref="Run(VitPretrainRunOptions, Action{string}?)"/> on the given train and validation
    /// images instead of Fashion-MNIST (tests, other data sets); <see cref="VitPretrainRunOptions.DataFraction"/>
    /// still cuts the train part. Null <paramref name="data"/> loads Fashion-MNIST.
    /// </summary>
    /// <param name="waitForFolder">Wait while another process writes the folder (a shared cache), instead of refusing.</param>
    public static PretrainRunSummary Run(VitPretrainRunOptions o, (LabeledImages Train, LabeledImages Validation)? data, Action<string>? log = null,
                                         bool waitForFolder = false)
    {
        Action<string> say = log ?? (o.Quiet ? _ => { } : Console.WriteLine);
        using var folderLock = waitForFolder ? FolderLock.AcquireWaiting(o.OutputFolder, "pretrain --model vit", say) : FolderLock.Acquire(o.OutputFolder, "pretrain --model vit");
        if (!(o.DataFraction > 0 && o.DataFraction <= 1)) throw new ArgumentException($"data fraction must be in (0, 1], got {o.DataFraction}");
        if (!(o.MaskRatio > 0 && o.MaskRatio < 1)) throw new ArgumentException($"mask ratio must be in (0, 1), got {o.MaskRatio}");
        if (!VitConfig.PresetNames.Contains(o.Preset.ToLowerInvariant()))
            throw new ArgumentException($"unknown ViT preset '{o.Preset}'; expected one of {string.Join(", ", VitConfig.PresetNames)}");
        Directory.CreateDirectory(o.OutputFolder);
        string checkpoints = Path.Combine(o.OutputFolder, PretrainRun.CheckpointsFolder);
        string settingsPath = Path.Combine(o.OutputFolder, "run.json");
        string settingsJson = SettingsJson.ToIndentedStringWithEnumNames(o with { Resume = false, Quiet = false });
        string? resumeFrom = o.Resume ? PretrainRun.LatestCheckpoint(checkpoints) : null;
        if (resumeFrom != null && File.Exists(settingsPath) && File.ReadAllText(settingsPath) != settingsJson)
            throw new InvalidOperationException($"{settingsPath}: the run in this folder used other settings; resume with the same options or use another --out");
        if (resumeFrom == null && !o.Resume && Directory.Exists(checkpoints) && Directory.EnumerateDirectories(checkpoints).Any())
            throw new InvalidOperationException($"{o.OutputFolder} already holds checkpoints; pass --resume to continue that run or choose another --out");
        File.WriteAllText(settingsPath, settingsJson);

        var (fullTrain, validation) = data ?? LoadFashionMnist(o.DataFolder, say);
        var normalization = PixelNormalization.FromImages(fullTrain);
        var train = o.DataFraction < 1 ? fullTrain.Subset(FractionIndices(fullTrain, o.DataFraction, o.Train.Seed)) : fullTrain;
        say($"data: {train.Count} training images ({o.DataFraction:0.###} of {fullTrain.Count}), {validation.Count} validation; " +
            $"pixels normalised with mean {normalization.Mean:F4}, std {normalization.Std:F4}");

        using var backend = BackendFactory.Create(o.Device, out string backendName, o.Threads);
        say($"device: {backendName}");
        var cfg = ConfigFor(o, train);
        var heads = o.Objective == VitObjective.Supervised ? VitHeads.Classification(train.ClassCount) : VitHeads.MaskedImageModeling;
        using var parameters = new VitParameters(backend, new VitParameterLayout(cfg, heads));
        parameters.Initialize(o.Train.Seed);
        say($"model: ViT {o.Preset} ({cfg.NumHiddenLayers} layers, hidden {cfg.HiddenSize}, {cfg.NumAttentionHeads} heads, patch {cfg.PatchSize}, {cfg.NumPatches} patches), " +
            $"{parameters.Layout.ParameterCount:N0} parameters, {parameters.Layout.PrunableLength:N0} prunable; objective {Describe(o.Objective, o.MaskRatio)}");
        using var trainer = new VitPretrainer(backend, parameters, o.Train, o.Objective, train, validation, normalization, o.MaskRatio);
        using var probe = new SparsityProbe(parameters.PrunableSet(), () => trainer.Step, trainer.EvaluateHeldOut, o.Probe);
        var probeLog = new ProbeLog(o.OutputFolder, o.Probe.Levels);
        var trainLog = new TrainLog(Path.Combine(o.OutputFolder, "train_log.csv"));
        ProbedTrainingLoop.Restore(trainer, resumeFrom, probeLog, trainLog, say);
        say($"training {o.Train.Steps} steps of {o.Train.BatchSize} images; probe every {o.Probe.Every} steps");
        // The shared loop reads steps, batch, probe, logging and checkpoint settings; "tokens" per step are batch x (patches + 1).
        var loopOptions = new PretrainRunOptions
        {
            OutputFolder = o.OutputFolder, Device = o.Device, Threads = o.Threads, Preset = o.Preset, DataFraction = o.DataFraction,
            Train = o.Train with { SequenceLength = cfg.SeqLength, GradientAccumulation = 1 }, Probe = o.Probe,
            CheckpointEvery = o.CheckpointEvery, KeepLast = o.KeepLast, KeepEvery = o.KeepEvery, LogEvery = o.LogEvery, Resume = o.Resume, Quiet = o.Quiet,
        };
        return ProbedTrainingLoop.Run(trainer, probe, probeLog, trainLog, loopOptions, checkpoints, resumeFrom, _ => { },
                                      AccuracyLabel(o.Objective), backendName, say);
    }

    /// <summary>
    /// A run's checkpoint evaluated on all of <paramref name="validation"/> with the run's objective, batch
    /// and mask ratio and the pixel normalisation it was trained with (see <see cref="VitPretrainer.EvaluateHeldOut"/>).
    /// </summary>
    public static MlmEvaluation EvaluateCheckpoint(string checkpoint, VitPretrainRunOptions o, LabeledImages validation)
    {
        var normalization = VitPretrainer.ReadNormalization(checkpoint)
                            ?? throw new InvalidDataException($"{checkpoint}: no trainer state with the pixel normalisation");
        using var backend = BackendFactory.Create(o.Device, out _, o.Threads);
        var heads = o.Objective == VitObjective.Supervised ? VitHeads.Classification(validation.ClassCount) : VitHeads.MaskedImageModeling;
        var (parameters, _) = VitCheckpoint.Load(checkpoint, backend, heads, o.Train.Seed);
        using (parameters)
        {
            // The evaluation reads only the validation images; the trainer needs a training set, so it gets the same.
            using var trainer = new VitPretrainer(backend, parameters, o.Train with { GradientAccumulation = 1 }, o.Objective,
                                                  validation, validation, normalization, o.MaskRatio);
            return trainer.EvaluateHeldOut(int.MaxValue);
        }
    }

    /// <summary>The model of a run: the preset at the images' size with the run's patch size and overrides.</summary>
    public static VitConfig ConfigFor(VitPretrainRunOptions o, LabeledImages images)
    {
        if (images.Height != images.Width) throw new ArgumentException($"ViT: images must be square, got {images.Height}x{images.Width}");
        var cfg = VitConfig.FromPreset(o.Preset, images.Height, o.PatchSize, images.Channels);
        if (o.Layers is int l) cfg = cfg with { NumHiddenLayers = l };
        if (o.Hidden is int h) cfg = cfg with { HiddenSize = h, NumAttentionHeads = Math.Max(1, h / 64), IntermediateSize = 4 * h };
        cfg.Validate();
        return cfg;
    }

    /// <summary>What the probe's "accuracy" is for an objective.</summary>
    public static string AccuracyLabel(VitObjective objective) =>
        objective == VitObjective.Supervised ? "top-1 acc" : "masked-pixel R²";

    public static string Describe(VitObjective objective, double maskRatio) =>
        objective == VitObjective.Supervised ? "supervised (10-class cross-entropy)" : $"masked patches ({maskRatio:P0} hidden, pixel MSE)";

    /// <summary>Fashion-MNIST's training set split into train and a stratified validation part (<see cref="ValidationSize"/> images, <see cref="SplitSeed"/>).</summary>
    public static (LabeledImages Train, LabeledImages Validation) LoadFashionMnist(string? folder, Action<string> say)
    {
        var data = FashionMnist.Load(folder);
        say($"data: Fashion-MNIST from {data.Folder}");
        return data.SplitTrain(ValidationSize, SplitSeed);
    }

    /// <summary>
    /// round(fraction * n_c) images of each class c (at least one), chosen by a Philox permutation
    /// keyed by (seed, class), sorted ascending: a deterministic, stratified share of <paramref name="images"/>.
    /// </summary>
    public static int[] FractionIndices(LabeledImages images, double fraction, ulong seed)
    {
        if (!(fraction > 0 && fraction <= 1)) throw new ArgumentOutOfRangeException(nameof(fraction), fraction, "expected a data fraction in (0, 1]");
        var byClass = new List<int>[images.ClassCount];
        for (int c = 0; c < byClass.Length; c++) byClass[c] = new List<int>();
        for (int i = 0; i < images.Count; i++) byClass[images.Labels[i]].Add(i);
        var result = new List<int>();
        for (int c = 0; c < byClass.Length; c++)
        {
            var members = byClass[c];
            if (members.Count == 0) continue;
            int keep = Math.Max(1, (int)Math.Round(fraction * members.Count, MidpointRounding.AwayFromZero));
            var perm = DatasetSplit.Permutation(members.Count, seed, FractionStreamBase + (ulong)c);
            for (int k = 0; k < keep; k++) result.Add(members[perm[k]]);
        }
        result.Sort();
        return result.ToArray();
    }
}
