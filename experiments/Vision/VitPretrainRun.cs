using NativeSparsity.Experiments.Training;

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

/// <summary>Contract for the ViT pre-training run (implemented on the vit-pretrain branch).</summary>
public static class VitPretrainRun
{
    /// <summary>Pre-trains (or resumes) into <see cref="VitPretrainRunOptions.OutputFolder"/>; LastCheckpoint is a VitCheckpoint folder.</summary>
    public static PretrainRunSummary Run(VitPretrainRunOptions o, Action<string>? log = null) =>
        throw new NotImplementedException("VitPretrainRun.Run: filled in by the vit-pretrain branch");
}
