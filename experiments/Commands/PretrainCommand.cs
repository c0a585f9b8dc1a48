using System.CommandLine;
using NativeSparsity.Experiments.Training;
using NativeSparsity.Experiments.Vision;

namespace NativeSparsity.Experiments.Commands;

/// <summary>`nsparse pretrain`: MLM pre-training of a BERT (or, with --model vit, ViT pre-training) with periodic sparsity probing.</summary>
public static class PretrainCommand
{
    /// <summary>The options of a pre-training run, shared with the studies that pre-train.</summary>
    public sealed class Options
    {
        public Option<string> Device { get; } = CommonOptions.Device();
        public Option<int> Threads { get; } = CommonOptions.Threads();
        public Option<ulong> Seed { get; } = CommonOptions.Seed();
        public Option<string> Preset { get; } = CommonOptions.Preset();
        public Option<int?> Layers { get; } = new Option<int?>("--layers") { Description = "Override the preset's number of layers." }.Positive();
        public Option<int?> Hidden { get; } = new Option<int?>("--hidden") { Description = "Override the preset's hidden size (heads = hidden/64, intermediate = 4 x hidden)." }.Positive();
        public Option<int> Vocab { get; } = new Option<int>("--vocab-size") { Description = "(BERT) Compact BPE vocabulary size (most frequent cl100k tokens of the corpus).", DefaultValueFactory = _ => 8192 }.Positive();
        public Option<string[]> Data { get; } = new("--data") { Description = "(BERT) Text files, or one folder of *.txt (one document per blank-line-separated block). Default: the embedded WordNet 3.0 corpus.", AllowMultipleArgumentsPerToken = true };
        public Option<double> DataFraction { get; } = new Option<double>("--data-fraction") { Description = "Keep this fraction of the documents (BERT) or of the training images, stratified by class (ViT), chosen deterministically.", DefaultValueFactory = _ => 1.0 }.Within(0.0, 1.0, lowOpen: true);
        public Option<int> Batch { get; } = new Option<int>("--batch-size") { Description = "Sequences (BERT) or images (ViT) per micro-batch.", DefaultValueFactory = _ => 32 }.Positive();
        public Option<int> Seq { get; } = new Option<int>("--seq-len") { Description = "(BERT) Tokens per sequence, [CLS] and [SEP] included.", DefaultValueFactory = _ => 128 }.Positive();
        public Option<int> Accum { get; } = new Option<int>("--grad-accum") { Description = "(BERT) Micro-batches per optimizer step.", DefaultValueFactory = _ => 1 }.Positive();
        public Option<long> Steps { get; } = new Option<long>("--steps") { Description = "Optimizer steps.", DefaultValueFactory = _ => 1000 }.Positive();
        public Option<float> Lr { get; } = new Option<float>("--lr") { Description = "Peak learning rate (BERT: 1e-4).", DefaultValueFactory = _ => 1e-4f }.Positive();
        public Option<long> Warmup { get; } = new Option<long>("--warmup") { Description = "Linear warm-up steps, then linear decay to 0.", DefaultValueFactory = _ => 100 }.NonNegative();
        public Option<float> WeightDecay { get; } = new Option<float>("--weight-decay") { Description = "AdamW decoupled weight decay (not on biases and LayerNorm).", DefaultValueFactory = _ => 0.01f }.NonNegative();
        public Option<float> Clip { get; } = new Option<float>("--max-grad-norm") { Description = "Clip gradients to this global L2 norm (0: off).", DefaultValueFactory = _ => 1.0f }.NonNegative();
        public Option<int> ProbeEvery { get; } = new Option<int>("--probe-every") { Description = "Probe sparsity every this many steps (0: never).", DefaultValueFactory = _ => 100 }.NonNegative();
        public Option<int> OmpEvery { get; } = new Option<int>("--omp-every") { Description = "Evaluate the OMP levels (pruned held-out evaluation) only every this many steps, a multiple of --probe-every (0: at every probe).", DefaultValueFactory = _ => 0 }.NonNegative();
        public Option<int> ProbeBatches { get; } = new Option<int>("--probe-batches") { Description = "Held-out batches per probe evaluation.", DefaultValueFactory = _ => 4 }.Positive();
        public Option<double> Epsilon { get; } = new Option<double>("--epsilon") { Description = "Accuracy drop (fraction; 0.01 = one point) the probe essential sparsity tolerates.", DefaultValueFactory = _ => 0.01 }.Within(0.0, 1.0);
        public Option<int> CheckpointEvery { get; } = new Option<int>("--checkpoint-every") { Description = "Write a checkpoint every this many steps (and at the end).", DefaultValueFactory = _ => 500 }.Positive();
        public Option<int> KeepLast { get; } = new Option<int>("--keep-last") { Description = "Checkpoints kept besides every --keep-every-th.", DefaultValueFactory = _ => 2 }.Positive();
        public Option<int> KeepEvery { get; } = new Option<int>("--keep-every") { Description = "Also keep checkpoints whose step is a multiple of this (0: none).", DefaultValueFactory = _ => 0 }.NonNegative();
        public Option<int> LogEvery { get; } = new Option<int>("--log-every") { Description = "Write train_log.csv every this many steps.", DefaultValueFactory = _ => 10 }.Positive();
        public Option<bool> Nsp { get; } = new("--nsp") { Description = "(BERT) Also train BERT's next-sentence prediction: rows become sentence pairs (half the time a random second half) and the NSP loss is added." };
        public Option<string?> Cache { get; } = new("--cache") { Description = "(BERT) Folder for tokenized corpora (default: $NSPARSE_CACHE or the user's local data folder)." };

        public void AddTo(Command c)
        {
            foreach (Option o in new Option[] { Device, Threads, Seed, Preset, Layers, Hidden, Vocab, Data, DataFraction, Batch, Seq, Accum, Steps, Lr,
                                                Warmup, WeightDecay, Clip, ProbeEvery, OmpEvery, ProbeBatches, Epsilon, CheckpointEvery, KeepLast, KeepEvery, LogEvery, Nsp, Cache })
                c.Options.Add(o);
        }

        public PretrainRunOptions Read(ParseResult r, string output, bool resume) => new()
        {
            OutputFolder = output, Device = r.GetValue(Device)!, Threads = r.GetValue(Threads), Preset = r.GetValue(Preset)!,
            Layers = r.GetValue(Layers), Hidden = r.GetValue(Hidden), VocabSize = r.GetValue(Vocab),
            Data = r.GetValue(Data), DataFraction = r.GetValue(DataFraction), CacheFolder = r.GetValue(Cache),
            Train = new PretrainSettings
            {
                BatchSize = r.GetValue(Batch), SequenceLength = r.GetValue(Seq), GradientAccumulation = r.GetValue(Accum),
                Steps = r.GetValue(Steps), LearningRate = r.GetValue(Lr), WarmupSteps = r.GetValue(Warmup),
                WeightDecay = r.GetValue(WeightDecay), MaxGradNorm = r.GetValue(Clip), Seed = r.GetValue(Seed),
                NextSentence = r.GetValue(Nsp),
            },
            Probe = new ProbeSettings { Every = r.GetValue(ProbeEvery), OmpEvery = r.GetValue(OmpEvery), EvalBatches = r.GetValue(ProbeBatches), Epsilon = r.GetValue(Epsilon) },
            CheckpointEvery = r.GetValue(CheckpointEvery), KeepLast = r.GetValue(KeepLast), KeepEvery = r.GetValue(KeepEvery),
            LogEvery = r.GetValue(LogEvery), Resume = resume,
        };
    }

    public static Command Build()
    {
        var cmd = new Command("pretrain", "Pre-train a BERT with masked language modelling (15% of tokens; 80/10/10), or with --model vit a ViT on Fashion-MNIST " +
                                          "(masked patches or supervised), probing how sparse it becomes every K steps.");
        var o = new Options();
        o.AddTo(cmd);
        var vit = new VitPretrainOptions();
        vit.AddTo(cmd);
        vit.Model.Description += " With vit, --batch-size, --lr, --warmup and --weight-decay default to 64, 1e-3, 50 and 0.05.";
        o.Preset.Description = "Model size. BERT: tiny (2/128), mini (4/256), small (4/512), medium (8/512), base (12/768), large (24/1024); " +
                               "ViT: tiny (4/128), small (6/256), base (12/768).";
        var output = new Option<string>("--out") { Description = "Run folder: checkpoints/, train_log.csv, probe.csv, probe_layers.csv, probe.jsonl.", DefaultValueFactory = _ => "runs/pretrain" };
        var resume = new Option<bool>("--resume") { Description = "Continue the run in --out from its last checkpoint (bit-exact on the CPU)." };
        cmd.Options.Add(output);
        cmd.Options.Add(resume);
        cmd.SetAction(r => CommandRunner.Run(() =>
        {
            var summary = vit.IsVit(r)
                ? VitPretrainRun.Run(vit.Read(r, o, r.GetValue(output)!, r.GetValue(resume), VitQuickDefaults.Pretrain))
                : PretrainRun.Run(o.Read(r, r.GetValue(output)!, r.GetValue(resume)));
            Console.WriteLine($"probe log: {summary.ProbeCsv}; last checkpoint: {summary.LastCheckpoint}");
        }));
        return cmd;
    }
}
