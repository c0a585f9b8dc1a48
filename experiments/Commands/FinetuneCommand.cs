using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using NativeSparsity.Engine.Backends;
using NativeSparsity.Engine.Backends.Cpu;
using NativeSparsity.Engine.Sparsity;
using NativeSparsity.Engine.Tensors;
using NativeSparsity.Experiments.Reporting;
using NativeSparsity.Experiments.Tasks;
using NativeSparsity.Experiments.Training;
using NativeSparsity.Experiments.Vision;
using NativeSparsity.Models.Bert;
using NativeSparsity.Models.Text;
using NativeSparsity.Engine.IO;

namespace NativeSparsity.Experiments.Commands;

/// <summary>Everything one `nsparse finetune` run needs.</summary>
public sealed record FinetuneRunOptions
{
    public required string Checkpoint { get; init; }
    public required string Task { get; init; }
    public string? GlueFolder { get; init; }
    public double Sparsity { get; init; }
    /// <summary>A mask written by MaskFile.Save, instead of <see cref="Sparsity"/>.</summary>
    public string? MaskPath { get; init; }
    /// <summary>Where to write the mask used (MaskFile format); nothing is written for a dense run.</summary>
    public string? SaveMaskPath { get; init; }
    public int MaxExamples { get; init; }
    public string Device { get; init; } = "cpu";
    public int Threads { get; init; }
    public string? OutputFolder { get; init; }
    public bool Save { get; init; }
    /// <summary>Write the saved checkpoint's prunable matrices in sparse-bitmask layout.</summary>
    public bool Compress { get; init; }
    public bool Quiet { get; init; }
    public FinetuneSettings Train { get; init; } = new();
    /// <summary>Settings used instead of <see cref="Train"/> when the checkpoint is a ViT.</summary>
    public VitFinetuneSettings VitTrain { get; init; } = new();
    /// <summary>Which images a ViT fine-tunes on.</summary>
    public VitDataOptions VitData { get; init; } = new();
}

/// <summary>`nsparse finetune`: fine-tune a checkpoint on one task, optionally with a fixed global-magnitude mask.</summary>
public static class FinetuneCommand
{
    public static Command Build()
    {
        var cmd = new Command("finetune", "Fine-tune a BERT checkpoint (ours or Hugging Face's) on a task, or a ViT checkpoint (config.json with \"model_type\": \"vit\") on Fashion-MNIST, " +
                                          "optionally pruned once by global weight magnitude with the mask fixed.");
        var checkpoint = new Option<string>("--checkpoint") { Description = $"Checkpoint folder (config.json and model.safetensors, plus a tokenizer, vocab.txt or vocab.compact-bpe.json, for a BERT), or {CheckpointResolver.Help}.", Required = true };
        var task = new Option<string?>("--task") { Description = $"{string.Join("|", WordNetTasks.Names)} (embedded), or glue:NAME ({string.Join(", ", GlueTasks.Names)}) with --glue-dir; {VisionTask.FashionMnistName} for a ViT. Default: supersense (BERT), {VisionTask.FashionMnistName} (ViT)." };
        var glue = new Option<string?>("--glue-dir") { Description = "(BERT) Folder holding the GLUE tasks as the GLUE download script leaves them." };
        var sparsity = new Option<double>("--sparsity") { Description = "Prune this fraction of the encoder's weight matrices by global magnitude before fine-tuning (0: dense).", DefaultValueFactory = _ => 0 }.Within(0.0, 1.0, highOpen: true);
        var epochs = new Option<int?>("--epochs") { Description = "Passes over the training split (default: 3 for a BERT, 8 for a ViT, the paper's)." }.Positive();
        var lr = new Option<float>("--lr") { Description = "Peak learning rate, decayed linearly to 0 with no warm-up.", DefaultValueFactory = _ => 2e-5f }.Positive();
        var batch = new Option<int?>("--batch-size") { Description = "Examples per optimizer step (default: 32 for a BERT, 64 for a ViT, the paper's)." }.Positive();
        var seq = new Option<int>("--max-seq-len") { Description = "(BERT) Maximum tokens per example, [CLS] and [SEP] included.", DefaultValueFactory = _ => 128 }.Positive();
        var wd = new Option<float>("--weight-decay") { Description = "AdamW decoupled weight decay (not on biases and LayerNorm).", DefaultValueFactory = _ => 0f }.NonNegative();
        var maxSteps = new Option<long>("--max-steps") { Description = "Stop after this many steps (0: all epochs).", DefaultValueFactory = _ => 0 }.NonNegative();
        var maxExamples = new Option<int>("--max-examples") { Description = "(BERT) Keep at most this many examples per split (0: all), for quick runs.", DefaultValueFactory = _ => 0 }.NonNegative();
        var vit = new VitDataCommandOptions();
        var batching = CommonOptions.Batching();
        var seed = CommonOptions.Seed();
        var device = CommonOptions.Device();
        var threads = CommonOptions.Threads();
        var output = new Option<string?>("--out") { Description = "Folder for metrics.json and metrics.csv (and the checkpoint with --save)." };
        var save = new Option<bool>("--save") { Description = "Also write the fine-tuned checkpoint to --out/checkpoint." };
        var compress = new Option<bool>("--compress") { Description = "With --save: store the prunable matrices in compressed-tensors' sparse-bitmask layout (smaller on disk; every nsparse command reads it)." };
        var maskFile = new Option<string?>("--mask") { Description = "Fine-tune with this mask (safetensors, one U8 '<weight>_mask' per prunable matrix, as --save-mask and the studies write) instead of --sparsity." };
        var saveMask = new Option<string?>("--save-mask") { Description = "Write the mask used to this safetensors file." };
        var sparse = new Option<bool>("--sparse") { Description = $"(BERT, CPU) With a mask: run the encoder projections pruned at least {SparseEncoderWeights.ForwardFrom:P0} through the sparse kernels (forward and dX; dW too from {SparseEncoderWeights.WeightGradFrom:P0}). Gradient clipping then counts kept weights only." };
        foreach (Option o in new Option[] { checkpoint, task, glue, sparsity, maskFile, saveMask, sparse, epochs, lr, batch, seq, batching, wd, maxSteps, maxExamples, seed, device, threads, output, save, compress })
            cmd.Options.Add(o);
        vit.AddTo(cmd);
        cmd.SetAction(r => CommandRunner.Run(() =>
        {
            string folder = CheckpointResolver.Resolve(r.GetValue(checkpoint)!);
            bool isVit = VitFinetuneRun.IsVitCheckpoint(folder);
            int? epochCount = r.GetValue(epochs), batchSize = r.GetValue(batch);
            if (r.GetValue(compress) && !r.GetValue(save)) throw new ArgumentException("--compress says how --save stores the checkpoint; give --save too");
            var options = new FinetuneRunOptions
            {
                Checkpoint = folder, Task = r.GetValue(task) ?? (isVit ? VisionTask.FashionMnistName : "supersense"), GlueFolder = r.GetValue(glue),
                Sparsity = r.GetValue(sparsity), MaskPath = r.GetValue(maskFile), SaveMaskPath = r.GetValue(saveMask), MaxExamples = r.GetValue(maxExamples), Device = r.GetValue(device)!,
                Threads = r.GetValue(threads), OutputFolder = r.GetValue(output), Save = r.GetValue(save), Compress = r.GetValue(compress),
                Train = new FinetuneSettings
                {
                    Epochs = epochCount ?? 3, LearningRate = r.GetValue(lr), BatchSize = batchSize ?? 32,
                    MaxSequenceLength = r.GetValue(seq), WeightDecay = r.GetValue(wd), MaxSteps = r.GetValue(maxSteps), Seed = r.GetValue(seed),
                    Batching = CommonOptions.ParseBatching(r.GetValue(batching)!),
                    SparseKernels = r.GetValue(sparse),
                },
                VitTrain = new VitFinetuneSettings
                {
                    Epochs = epochCount ?? 8, LearningRate = r.GetValue(lr), BatchSize = batchSize ?? 64, WeightDecay = r.GetValue(wd),
                    MaxSteps = r.GetValue(maxSteps), Seed = r.GetValue(seed), Augment = !r.GetValue(vit.NoAugment),
                },
                VitData = vit.Read(r),
            };
            var result = Run(options);
            var last = result.Epochs[^1];
            Console.WriteLine($"final {string.Join(", ", last.Metrics.Select(kv => $"{kv.Key} {kv.Value:F4}"))}");
        }));
        return cmd;
    }

    /// <summary>Loads a task by its command-line name.</summary>
    public static ClassificationTask LoadTask(string name, string? glueFolder, int maxExamples)
    {
        if (name.StartsWith("glue:", StringComparison.OrdinalIgnoreCase))
        {
            if (string.IsNullOrEmpty(glueFolder)) throw new ArgumentException($"--task {name} needs --glue-dir");
            return GlueTasks.Load(glueFolder, name["glue:".Length..], maxExamples);
        }
        if (!WordNetTasks.Names.Contains(name, StringComparer.OrdinalIgnoreCase))
            throw new ArgumentException($"--task: unknown task '{name}'; expected {string.Join(", ", WordNetTasks.Names)} or glue:NAME");
        return WordNetTasks.Build(name.ToLowerInvariant(), new WordNetTaskOptions(MaxExamplesPerSplit: maxExamples));
    }

    /// <summary>
    /// The global-magnitude mask of the checkpoint's prunable weights at <paramref name="sparsity"/>
    /// (null for 0), computed on the host whatever the device.
    /// </summary>
    public static MaskSet? MaskFor(BertParameters parameters, double sparsity, CpuBackend host) => MaskFor(HostPrunableSet(parameters, host), sparsity);

    /// <summary>The global-magnitude mask of a host prunable set at <paramref name="sparsity"/> (null for 0).</summary>
    public static MaskSet? MaskFor(PrunableSet hostSet, double sparsity)
    {
        if (!(sparsity >= 0 && sparsity < 1)) throw new ArgumentException($"--sparsity must lie in [0, 1), got {sparsity}");
        if (sparsity == 0) return null;
        return Masks.GlobalMagnitude(hostSet, sparsity);
    }

    /// <summary>Reads a mask file for the checkpoint's prunable matrices (on the host); --sparsity must then be left at 0.</summary>
    public static MaskSet LoadMask(string path, BertParameters parameters, CpuBackend host, double sparsity = 0)
    {
        if (sparsity != 0) throw new ArgumentException($"--mask and --sparsity {sparsity} both given; the mask file fixes the sparsity");
        return LoadMask(path, HostPrunableSet(parameters, host), host);
    }

    /// <summary>Reads a mask file for a host prunable set (any model's); --sparsity must then be left at 0.</summary>
    public static MaskSet LoadMask(string path, PrunableSet hostSet, CpuBackend host, double sparsity = 0)
    {
        if (sparsity != 0) throw new ArgumentException($"--mask and --sparsity {sparsity} both given; the mask file fixes the sparsity");
        if (!File.Exists(path)) throw new FileNotFoundException($"--mask: no file '{path}'", path);
        return MaskFile.Load(path, hostSet, host.Allocate(DType.U8, checked((int)hostSet.Count)));
    }

    /// <summary>The prunable set over a host copy of the parameters (the same tensor when they already live on the CPU).</summary>
    public static PrunableSet HostPrunableSet(BertParameters parameters, CpuBackend host) => HostPrunableSet(parameters.PrunableSet(), parameters.Backend, host);

    /// <summary>A prunable set living on <paramref name="backend"/> as a host set (itself when already on the CPU).</summary>
    public static PrunableSet HostPrunableSet(PrunableSet set, IBackend backend, CpuBackend host)
    {
        if (set.Span.Storage is CpuStorage) return set;
        var copy = host.Allocate(DType.F32, checked((int)set.Count));
        backend.CopyToHost(set.Span, copy.F32Span());
        return new PrunableSet(copy, set.Matrices);
    }

    /// <summary>What a fine-tuning run measured; <paramref name="TestAccuracy"/> only for a ViT with a test split.</summary>
    public sealed record Result(IReadOnlyList<FinetuneEpoch> Epochs, long PrunedCount, long PrunableCount, string Backend, double TestAccuracy = double.NaN);

    /// <summary>
    /// Runs the fine-tuning; <paramref name="task"/> overrides loading o.Task (tests, studies). A ViT
    /// checkpoint (see <see cref="VitFinetuneRun.IsVitCheckpoint"/>) runs <see cref="VitFinetuneRun.Run"/>.
    /// </summary>
    public static Result Run(FinetuneRunOptions o, ClassificationTask? task = null)
    {
        Action<string> say = o.Quiet ? _ => { } : Console.WriteLine;
        if (!Directory.Exists(o.Checkpoint)) throw new DirectoryNotFoundException($"--checkpoint: no folder '{o.Checkpoint}'");
        using var folderLock = o.OutputFolder != null ? FolderLock.Acquire(o.OutputFolder, "finetune") : null;
        if (VitFinetuneRun.IsVitCheckpoint(o.Checkpoint))
        {
            if (task != null) throw new ArgumentException($"checkpoint '{o.Checkpoint}' is a ViT; it fine-tunes on images, not on text task '{task.Name}'");
            return VitFinetuneRun.Run(o);
        }
        var tokenizer = Tokenizers.LoadFor(o.Checkpoint, BertCheckpoint.ReadConfig(o.Checkpoint).VocabSize);
        task ??= LoadTask(o.Task, o.GlueFolder, o.MaxExamples);
        double bagOfWords = BagOfWordsBaseline.Score(task, task.EvaluationSplit);
        say($"task {task.Name}: {task.Train.Count} train, {task.Dev.Count} {task.EvaluationSplit}, {(task.IsRegression ? "regression" : $"{task.NumLabels} classes")}; " +
            $"majority baseline {task.MajorityBaseline(task.EvaluationSplit):P1}" +
            (task.IsRegression ? "" : $", bag-of-words baseline {task.MainMetric.Name()} {bagOfWords:P1}"));
        using var backend = BackendFactory.Create(o.Device, out string backendName, o.Threads);
        var host = new CpuBackend();
        using var parameters = BertFinetuner.LoadForTask(o.Checkpoint, backend, task, o.Train.Seed, say);
        var mask = o.MaskPath != null ? LoadMask(o.MaskPath, parameters, host, o.Sparsity) : MaskFor(parameters, o.Sparsity, host);
        if (mask != null && o.SaveMaskPath != null)
        {
            MaskFile.Save(o.SaveMaskPath, mask);
            say($"mask: {o.SaveMaskPath}");
        }
        say($"device: {backendName}; model {parameters.Layout.ParameterCount:N0} parameters, {parameters.Layout.PrunableLength:N0} prunable" +
            (mask != null ? $"; {mask.Description}" : "; dense"));
        using var tuner = new BertFinetuner(parameters, task, tokenizer, o.Train, mask);
        if (o.Train.SparseKernels)
            say(mask == null ? "--sparse: no mask, so the model runs dense" : $"sparse kernels: {tuner.SparseProjections} encoder projections");
        var progress = new ProgressLine(tuner.TotalSteps);
        double recent = double.NaN;
        var epochs = tuner.Train(
            s =>
            {
                recent = double.IsNaN(recent) ? s.Loss : 0.9 * recent + 0.1 * s.Loss;
                if (!o.Quiet) progress.Update(s.Step, $"epoch {s.Epoch} loss {recent:F4} lr {s.LearningRate:0.##e0}");
            },
            e => { if (!o.Quiet) progress.Message($"epoch {e.Epoch}: train loss {e.TrainLoss:F4}, {FormatMetrics(e.Metrics)} ({e.Seconds:F1}s)"); });
        if (!o.Quiet) progress.Finish();
        if (o.OutputFolder != null)
        {
            Directory.CreateDirectory(o.OutputFolder);
            WriteMetrics(o, task, tuner, epochs, backendName, bagOfWords);
            if (o.Save)
            {
                string folder = Path.Combine(o.OutputFolder, "checkpoint");
                BertCheckpoint.Save(folder, parameters, new Dictionary<string, string> { ["task"] = task.Name, ["sparsity"] = (o.MaskPath != null ? (double)tuner.PrunedCount / parameters.Layout.PrunableLength : o.Sparsity).ToString("R", CultureInfo.InvariantCulture) },
                    tmp => tokenizer.Save(tmp), o.Compress);
                say($"checkpoint: {folder}");
            }
            say($"metrics: {Path.Combine(o.OutputFolder, "metrics.json")}");
        }
        return new Result(epochs, tuner.PrunedCount, parameters.Layout.PrunableLength, backendName);
    }

    public static string FormatMetrics(IReadOnlyDictionary<string, double> metrics) =>
        string.Join(", ", metrics.Select(kv => string.Create(CultureInfo.InvariantCulture, $"{kv.Key} {kv.Value:F4}")));

    private static void WriteMetrics(FinetuneRunOptions o, ClassificationTask task, BertFinetuner tuner, IReadOnlyList<FinetuneEpoch> epochs, string backend, double bagOfWords)
    {
        var json = new JsonObject
        {
            ["checkpoint"] = Path.GetFullPath(o.Checkpoint),
            ["task"] = task.Name,
            ["evaluation_split"] = task.EvaluationSplit,
            ["train_examples"] = task.Train.Count,
            ["eval_examples"] = task.Dev.Count,
            ["majority_baseline"] = Finite(task.MajorityBaseline(task.EvaluationSplit)),
            ["bag_of_words_baseline"] = Finite(bagOfWords),
            ["bag_of_words_metric"] = task.MainMetric.Name(),
            ["sparsity"] = (double)tuner.PrunedCount / tuner.Parameters.Layout.PrunableLength,
            ["mask_file"] = o.MaskPath == null ? null : Path.GetFullPath(o.MaskPath),
            ["pruned"] = tuner.PrunedCount,
            ["prunable"] = tuner.Parameters.Layout.PrunableLength,
            ["sequence_length"] = tuner.SequenceLength,
            ["backend"] = backend,
            ["settings"] = SettingsJson.ToNode(o.Train),
            ["epochs"] = new JsonArray(epochs.Select(e => (JsonNode)new JsonObject
            {
                ["epoch"] = e.Epoch, ["steps"] = e.Steps, ["train_loss"] = Finite(e.TrainLoss), ["seconds"] = e.Seconds,
                ["metrics"] = new JsonObject(e.Metrics.Select(kv => KeyValuePair.Create(kv.Key, Finite(kv.Value)))),
            }).ToArray()),
        };
        File.WriteAllText(Path.Combine(o.OutputFolder!, "metrics.json"), json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        var names = task.MetricNames.ToList();
        var csv = new StringBuilder("epoch,steps,train_loss,seconds," + string.Join(",", names) + "\n");
        foreach (var e in epochs)
            csv.Append(string.Join(",", new[] { e.Epoch.ToString(CultureInfo.InvariantCulture), e.Steps.ToString(CultureInfo.InvariantCulture),
                e.TrainLoss.ToString("R", CultureInfo.InvariantCulture), e.Seconds.ToString("F3", CultureInfo.InvariantCulture) }
                .Concat(names.Select(n => (e.Metrics.TryGetValue(n, out var v) ? v : double.NaN).ToString("R", CultureInfo.InvariantCulture))))).Append('\n');
        File.WriteAllText(Path.Combine(o.OutputFolder!, "metrics.csv"), csv.ToString());
    }

    private static JsonNode? Finite(double v) => double.IsFinite(v) ? JsonValue.Create(v) : null;
}
