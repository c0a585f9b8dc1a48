using System.CommandLine;
using NativeSparsity.Experiments.Training;
using NativeSparsity.Experiments.Vision;
using NativeSparsity.Models.Vit;

namespace NativeSparsity.Experiments.Commands;

/// <summary>
/// Defaults a ViT run takes for the shared pre-training options the user did not give (the BERT
/// defaults of those options do not suit a ViT on Fashion-MNIST).
/// </summary>
public sealed record VitQuickDefaults(long Steps, int BatchSize, float LearningRate, long Warmup, float WeightDecay,
                                      int ProbeEvery, int OmpEvery, int CheckpointEvery, int ProbeBatches, double DataFraction = 1.0)
{
    /// <summary>`nsparse pretrain --model vit`: batch 64, lr 1e-3, warm-up 50, weight decay 0.05 (as <see cref="VitPretrainRunOptions"/>).</summary>
    public static VitQuickDefaults Pretrain { get; } = new(1000, 64, 1e-3f, 50, 0.05f, 100, 0, 500, 4);

    /// <summary>
    /// The studies' quick CPU settings (a few minutes per run on 2 cores with the tiny preset): 200 steps of 64 images,
    /// lr 1e-3 (a small model trained from scratch; 2e-5 is the paper's rate for fine-tuning a pre-trained one), warm-up 20,
    /// weight decay 0.05, statistics every 20 steps, OMP every 100 over 4 validation batches (256 images);
    /// ssl-vs-sl trains on 10% of the training split (5,500 images).
    /// </summary>
    public static VitQuickDefaults Study { get; } = new(200, 64, 1e-3f, 20, 0.05f, 20, 100, 100, 4, 0.1);
}

/// <summary>`--model bert|vit` and the ViT-only options of the commands that pre-train.</summary>
public sealed class VitPretrainOptions
{
    public Option<string> Model { get; } = new("--model")
    {
        Description = "Model family: bert (MLM on text) or vit (a ViT on Fashion-MNIST).",
        DefaultValueFactory = _ => "bert",
    };
    public Option<string> Objective { get; } = new("--objective")
    {
        Description = "(ViT) Pre-training objective: masked-patches (self-supervised, SimMIM-style pixel regression) or supervised (10-class classification).",
        DefaultValueFactory = _ => "masked-patches",
    };
    public Option<int> PatchSize { get; } = new Option<int>("--patch-size")
    {
        Description = "(ViT) Patch side in pixels; must divide 28 (2, 4, 7, 14).",
        DefaultValueFactory = _ => 4,
    }.Positive();
    public Option<double> MaskRatio { get; } = new Option<double>("--mask-ratio")
    {
        Description = "(ViT) Share of each image's patches hidden for masked-patches (round(ratio x patches)).",
        DefaultValueFactory = _ => 0.5,
    }.Within(0.0, 1.0, lowOpen: true, highOpen: true);
    public Option<string?> DataDir { get; } = new("--data-dir")
    {
        Description = "(ViT) Folder with the four Fashion-MNIST IDX files. Default: $NSPARSE_FASHION_MNIST, the checkout's .tools/fashion-mnist " +
                      "(scripts/fetch-fashion-mnist.sh), /usr/share/datasets/fashion-mnist.",
    };

    private readonly bool _withObjective;

    /// <param name="withObjective">Whether the command has --objective (ssl-vs-sl trains both).</param>
    public VitPretrainOptions(bool withObjective = true)
    {
        _withObjective = withObjective;
        Model.Validators.Add(r =>
        {
            string v = r.GetValueOrDefault<string>() ?? "";
            if (v != "bert" && v != "vit") r.AddError($"--model: expected bert or vit, got '{v}'");
        });
        Objective.Validators.Add(r =>
        {
            string v = r.GetValueOrDefault<string>() ?? "";
            if (v != "supervised" && v != "masked-patches") r.AddError($"--objective: expected supervised or masked-patches, got '{v}'");
        });
    }

    public void AddTo(Command c)
    {
        c.Options.Add(Model);
        if (_withObjective) c.Options.Add(Objective);
        foreach (Option o in new Option[] { PatchSize, MaskRatio, DataDir }) c.Options.Add(o);
    }

    public bool IsVit(ParseResult r) => r.GetValue(Model) == "vit";

    public static VitObjective ParseObjective(string text) => text switch
    {
        "supervised" => VitObjective.Supervised,
        "masked-patches" => VitObjective.MaskedPatches,
        _ => throw new ArgumentException($"--objective: expected supervised or masked-patches, got '{text}'"),
    };

    /// <summary>The ViT run the command line asks for; shared options not given take <paramref name="defaults"/>.</summary>
    public VitPretrainRunOptions Read(ParseResult r, PretrainCommand.Options shared, string output, bool resume, VitQuickDefaults defaults)
    {
        T Pick<T>(Option<T> option, T vitDefault) => r.GetResult(option) is { Implicit: false } ? r.GetValue(option)! : vitDefault;
        string preset = r.GetValue(shared.Preset)!;
        if (!VitConfig.PresetNames.Contains(preset))
            throw new ArgumentException($"--preset: '{preset}' is not a ViT preset; with --model vit use one of {string.Join(", ", VitConfig.PresetNames)}");
        int patch = r.GetValue(PatchSize);
        if (28 % patch != 0) throw new ArgumentException($"--patch-size: {patch} does not divide Fashion-MNIST's 28 pixels; use 2, 4, 7 or 14");
        if (r.GetValue(shared.Accum) != 1) throw new ArgumentException("--grad-accum is BERT-only; a ViT run takes one batch per step");
        return new VitPretrainRunOptions
        {
            OutputFolder = output, Objective = _withObjective ? ParseObjective(r.GetValue(Objective)!) : VitObjective.MaskedPatches, Device = r.GetValue(shared.Device)!, Threads = r.GetValue(shared.Threads),
            Preset = preset, PatchSize = patch, Layers = r.GetValue(shared.Layers), Hidden = r.GetValue(shared.Hidden), DataFolder = r.GetValue(DataDir), DataFraction = Pick(shared.DataFraction, defaults.DataFraction), MaskRatio = r.GetValue(MaskRatio),
            Train = new PretrainSettings
            {
                BatchSize = Pick(shared.Batch, defaults.BatchSize), Steps = Pick(shared.Steps, defaults.Steps), LearningRate = Pick(shared.Lr, defaults.LearningRate),
                WarmupSteps = Pick(shared.Warmup, defaults.Warmup), WeightDecay = Pick(shared.WeightDecay, defaults.WeightDecay),
                MaxGradNorm = r.GetValue(shared.Clip), Seed = r.GetValue(shared.Seed),
            },
            Probe = new ProbeSettings
            {
                Every = Pick(shared.ProbeEvery, defaults.ProbeEvery), OmpEvery = Pick(shared.OmpEvery, defaults.OmpEvery),
                EvalBatches = Pick(shared.ProbeBatches, defaults.ProbeBatches), Epsilon = r.GetValue(shared.Epsilon),
            },
            CheckpointEvery = Pick(shared.CheckpointEvery, defaults.CheckpointEvery), KeepLast = r.GetValue(shared.KeepLast),
            KeepEvery = r.GetValue(shared.KeepEvery), LogEvery = r.GetValue(shared.LogEvery), Resume = resume,
        };
    }
}
