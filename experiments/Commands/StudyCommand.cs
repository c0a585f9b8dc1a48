using System.CommandLine;
using System.Globalization;
using NativeSparsity.Experiments.Studies;
using NativeSparsity.Experiments.Training;
using NativeSparsity.Experiments.Vision;

namespace NativeSparsity.Experiments.Commands;

/// <summary>`nsparse study ...`: the paper's experiments, each writing one report folder.</summary>
public static class StudyCommand
{
    public static Command Build()
    {
        var study = new Command("study", "Run one of the paper's studies end to end and write a report folder (CSV, PNG plots, summary.md).");
        study.Subcommands.Add(BuildAbrupt());
        study.Subcommands.Add(BuildSslVsSl());
        study.Subcommands.Add(BuildEssential());
        study.Subcommands.Add(BuildNM());
        study.Subcommands.Add(BuildLottery());
        return study;
    }

    private static Command BuildEssential()
    {
        var cmd = new Command("essential", "Prune a pre-trained BERT (or, with --model vit, a ViT) once by global magnitude at several levels, fine-tune every task with the mask fixed over several seeds, " +
                                           "and report per task the drop from dense, the essential sparsity and the sharp dropping point. By default it runs on the built-in minilm-l6; " +
                                           "--checkpoint pretrain pre-trains (once, cached) a small BERT on the embedded corpus first, and --model vit without --checkpoint a ViT on Fashion-MNIST.");
        var random = new Option<bool>("--random") { Description = "Also fine-tune with random global masks at the same levels (baseline)." };
        var epsilon = new Option<double>("--epsilon") { Description = "Tolerated mean drop of the main metric (fraction; 0.01 = one point).", DefaultValueFactory = _ => 0.01 }.Within(0.0, 1.0);
        var component = new Option<double>("--component-sparsity") { Description = "Level whose mask the per-component chart shows.", DefaultValueFactory = _ => 0.5 }.Within(0.0, 1.0, highOpen: true);
        var handles = new FinetuneStudyHandles();
        // The main job's defaults fit 30 minutes on 2 cores on minilm-l6 (docs/EXPERIMENTS-FINETUNE.md says what each costs and buys).
        var read = AddFinetuneStudyOptions(cmd, "reports/essential", "0.3,0.5,0.7,0.9", 2, handles, defaultCheckpoint: "minilm-l6");
        foreach (Option opt in new Option[] { random, epsilon, component }) cmd.Options.Add(opt);
        var vit = new VitStudyCommandOptions(cmd);
        cmd.SetAction(r => CommandRunner.Run(() =>
        {
            var options = read(r) with { Random = r.GetValue(random), Epsilon = r.GetValue(epsilon), ComponentSparsity = r.GetValue(component) };
            if (vit.IsVit(r, options.Checkpoint)) options = vit.Apply(r, options, handles);
            Console.WriteLine($"report: {EssentialStudy.Run(options)}");
        }));
        return cmd;
    }

    /// <summary>The shared fine-tuning options a ViT study reads with its own defaults when they are not given.</summary>
    private sealed class FinetuneStudyHandles
    {
        public Option<int> Epochs { get; set; } = null!;
        public Option<float> Lr { get; set; } = null!;
        public Option<int> Batch { get; set; } = null!;
        public Option<string> Output { get; set; } = null!;
        public Option<string> Checkpoint { get; set; } = null!;
    }

    /// <summary>`--model` and the ViT-only options of `study essential`.</summary>
    private sealed class VitStudyCommandOptions
    {
        private readonly Option<string> _model = new("--model") { Description = "Model family: bert (text tasks) or vit (Fashion-MNIST; chosen too when --checkpoint is a ViT).", DefaultValueFactory = _ => "bert" };
        private readonly Option<string> _objective = new("--objective") { Description = "(ViT) Pre-training objective when the study pre-trains its own ViT: masked-patches or supervised.", DefaultValueFactory = _ => "masked-patches" };
        private readonly Option<int> _patch = new Option<int>("--patch-size") { Description = "(ViT) Patch side of the ViT the study pre-trains (divides 28).", DefaultValueFactory = _ => 4 }.Positive();
        private readonly Option<double> _maskRatio = new Option<double>("--mask-ratio") { Description = "(ViT) Share of patches hidden by masked-patches pre-training.", DefaultValueFactory = _ => 0.5 }.Within(0.0, 1.0, lowOpen: true, highOpen: true);
        private readonly VitDataCommandOptions _data = new(trainPerClass: 100, validationPerClass: 50, testPerClass: 100);

        public VitStudyCommandOptions(Command cmd)
        {
            _model.Validators.Add(r =>
            {
                string v = r.GetValueOrDefault<string>() ?? "";
                if (v != "bert" && v != "vit") r.AddError($"--model: expected bert or vit, got '{v}'");
            });
            foreach (Option o in new Option[] { _model, _objective, _patch, _maskRatio }) cmd.Options.Add(o);
            _data.AddTo(cmd);
        }

        public bool IsVit(ParseResult r, string? checkpoint) =>
            r.GetValue(_model) == "vit" || (checkpoint != null && Directory.Exists(checkpoint) && VitFinetuneRun.IsVitCheckpoint(checkpoint));

        /// <summary>
        /// The ViT study: quick defaults (VitFinetuneSettings.Quick, 100/50/100 images per class) for the shared
        /// fine-tuning options not given; pre-training (without --checkpoint) as VitPretrainRunOptions' defaults
        /// (batch 64, lr 1e-3, warm-up 50, weight decay 0.05) for --steps steps, no probing.
        /// </summary>
        public EssentialStudyOptions Apply(ParseResult r, EssentialStudyOptions o, FinetuneStudyHandles h)
        {
            T Pick<T>(Option<T> option, T vitDefault) => r.GetResult(option) is { Implicit: false } ? r.GetValue(option)! : vitDefault;
            // The default checkpoint is a BERT: a ViT study without --checkpoint pre-trains its own ViT.
            if (r.GetResult(h.Checkpoint) is not { Implicit: false }) o = o with { Checkpoint = null };
            var quick = VitFinetuneSettings.Quick;
            string objective = r.GetValue(_objective)!;
            var pretrain = o.Pretrain!;
            double maskRatio = r.GetValue(_maskRatio);
            var template = new VitPretrainRunOptions { OutputFolder = "" };
            template = template with
            {
                Objective = objective switch
                {
                    "masked-patches" => VitObjective.MaskedPatches,
                    "supervised" => VitObjective.Supervised,
                    _ => throw new ArgumentException($"--objective: expected masked-patches or supervised, got '{objective}'"),
                },
                Device = o.Device, Threads = o.Threads, Preset = pretrain.Preset, PatchSize = r.GetValue(_patch), DataFolder = r.GetValue(_data.DataDir),
                MaskRatio = maskRatio, Train = template.Train with { Steps = pretrain.Train.Steps, Seed = pretrain.Train.Seed },
                Probe = new ProbeSettings { Every = 0 }, CheckpointEvery = 250,
            };
            return o with
            {
                Model = StudyModel.Vit,
                ReportFolder = Pick(h.Output, "reports/essential-vit"),
                Vit = new VitStudySettings
                {
                    Data = _data.Read(r), Pretrain = template,
                    Train = quick with
                    {
                        Epochs = Pick(h.Epochs, quick.Epochs), LearningRate = Pick(h.Lr, quick.LearningRate), BatchSize = Pick(h.Batch, quick.BatchSize),
                        MaxSteps = o.Train.MaxSteps, Seed = o.Train.Seed, Augment = !r.GetValue(_data.NoAugment),
                    },
                },
            };
        }
    }

    private static Command BuildNM()
    {
        var cmd = new Command("nm", "Prune a pre-trained BERT once with N:M patterns (N largest |w| of every M consecutive input weights), fine-tune every task with the mask fixed " +
                                    "as `study essential` does, and report the drop from dense per pattern and task.");
        var patterns = new Option<string>("--patterns") { Description = "Comma-separated N:M patterns.", DefaultValueFactory = _ => "1:4,2:4,2:8,4:8" };
        var read = AddFinetuneStudyOptions(cmd, "reports/nm", null, 3);
        cmd.Options.Add(patterns);
        cmd.SetAction(r => CommandRunner.Run(() =>
        {
            var list = r.GetValue(patterns)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(NMPattern.Parse).ToList();
            Console.WriteLine($"report: {NMStudy.Run(read(r), list)}");
        }));
        return cmd;
    }

    private static Command BuildLottery()
    {
        var cmd = new Command("lottery", "Lottery tickets per task by iterative magnitude pruning with rewinding to the pre-trained weights, against one-shot OMP at the same " +
                                         "sparsities: metric difference and mask similarity (cosine, Jaccard, beside their chance levels).");
        var rate = new Option<double>("--prune-rate") { Description = "Fraction of the remaining prunable weights pruned per round (rounds stop at every target level too).", DefaultValueFactory = _ => 0.1 }.Within(0.0, 1.0, lowOpen: true, highOpen: true);
        var read = AddFinetuneStudyOptions(cmd, "reports/lottery", "0.1,0.2,0.3,0.4,0.5", 1);
        cmd.Options.Add(rate);
        cmd.SetAction(r => CommandRunner.Run(() => Console.WriteLine($"report: {LotteryStudy.Run(read(r), r.GetValue(rate))}")));
        return cmd;
    }

    /// <summary>
    /// The options every fine-tuning study shares (checkpoint or pre-training, tasks, seeds,
    /// fine-tuning settings, report folder); returns how to read them. <paramref name="defaultLevels"/>
    /// null: no --levels option.
    /// </summary>
    // What the fine-tuning studies pre-train their quick BERT with when given no checkpoint
    // (1200 steps of 32 x 64 tokens: about one pass over the embedded corpus).
    private const float StudyPretrainLr = 2e-3f;
    private const int StudyPretrainBatch = 32;

    /// <summary>`--checkpoint pretrain`: the study pre-trains (once, cached) its own quick BERT on the embedded corpus.</summary>
    public const string PretrainCheckpoint = "pretrain";

    /// <summary>Fine-tuning learning rate of a real pre-trained checkpoint (minilm-l6: 58.6% on supersense at 3e-4 against
    /// 41% at 1e-4 and 1e-3, docs/MODELS.md) and of the quick model the study pre-trains (which needs more).</summary>
    private const float PretrainedLr = 3e-4f, QuickModelLr = 1e-3f;

    private static Func<ParseResult, EssentialStudyOptions> AddFinetuneStudyOptions(Command cmd, string defaultOut, string? defaultLevels, int defaultSeeds,
                                                                                    FinetuneStudyHandles? handles = null, string defaultCheckpoint = PretrainCheckpoint,
                                                                                    string defaultTasks = "supersense,antonym", int defaultMaxExamples = 2000, int defaultEpochs = 2)
    {
        var checkpoint = new Option<string>("--checkpoint")
        {
            Description = $"Pre-trained checkpoint: {CheckpointResolver.Help} (a folder may be ours or Hugging Face's, with vocab.txt), " +
                          $"or '{PretrainCheckpoint}' to pre-train a quick BERT on the embedded corpus first (cached; the --steps ... options below).",
            DefaultValueFactory = _ => defaultCheckpoint,
        };
        // The quick default: the two tasks the quick BERT learns within its budget (docs/EXPERIMENTS-FINETUNE.md).
        var tasks = new Option<string>("--tasks") { Description = "(BERT) Comma-separated tasks: supersense, hypernym, antonym, sense, glue:NAME (with --glue-dir).", DefaultValueFactory = _ => defaultTasks };
        var glue = new Option<string?>("--glue-dir") { Description = "(BERT) Folder holding the GLUE tasks as the GLUE download script leaves them." };
        var levels = new Option<string>("--levels") { Description = "Comma-separated sparsities to prune (the dense baseline is always run).", DefaultValueFactory = _ => defaultLevels ?? "" };
        var seeds = new Option<int>("--seeds") { Description = "Fine-tuning seeds per cell (data order, dropout, head initialisation).", DefaultValueFactory = _ => defaultSeeds }.Positive();
        var maxExamples = new Option<int>("--max-examples") { Description = "(BERT) Cap per split (0: all).", DefaultValueFactory = _ => defaultMaxExamples }.NonNegative();
        var epochs = new Option<int>("--epochs") { Description = "Fine-tuning epochs per cell (ViT default: 3).", DefaultValueFactory = _ => defaultEpochs }.Positive();
        var lr = new Option<float>("--lr")
        {
            Description = $"Peak fine-tuning learning rate (the paper: 2e-5 for BERT-base and ViT; measured best for minilm-l6: 3e-4; " +
                          $"with --checkpoint {PretrainCheckpoint} the default is {QuickModelLr:0e0}, which the quick model needs; ViT default: 1e-3).",
            DefaultValueFactory = _ => PretrainedLr,
        }.Positive();
        var batch = new Option<int>("--batch-size") { Description = "Fine-tuning batch size (ViT default: 64).", DefaultValueFactory = _ => 32 }.Positive();
        var seq = new Option<int>("--max-seq-len") { Description = "(BERT) Maximum tokens per example.", DefaultValueFactory = _ => 64 }.Positive();
        var maxSteps = new Option<long>("--max-steps") { Description = "Cap on fine-tuning steps per cell (0: all epochs).", DefaultValueFactory = _ => 0 }.NonNegative();
        var batching = CommonOptions.Batching();
        var pretrainFolder = new Option<string?>("--pretrain-out") { Description = "Where the study pre-trains its own model (default: the cache folder)." };
        var output = new Option<string>("--out") { Description = "Report folder (cells made with the same checkpoint and fine-tuning settings are shared between studies).", DefaultValueFactory = _ => defaultOut };
        // Pre-training options for the no-checkpoint case, with quick defaults (minutes on 2 cores).
        var o = new PretrainCommand.Options();
        o.AddTo(cmd);
        // The study's own --epsilon (tolerated drop of the task metric) replaces the pre-training probe's.
        cmd.Options.Remove(o.Epsilon);
        // The fine-tuning --lr and --batch-size below share their names with the pre-training ones, and the parser gives a
        // name's value to the first option registered: the pre-training ones leave the command and keep the quick values.
        cmd.Options.Remove(o.Lr);
        cmd.Options.Remove(o.Batch);
        o.Steps.DefaultValueFactory = _ => 1200;
        o.Batch.DefaultValueFactory = _ => StudyPretrainBatch;
        o.Seq.DefaultValueFactory = _ => 64;
        o.Lr.DefaultValueFactory = _ => StudyPretrainLr;
        o.Warmup.DefaultValueFactory = _ => 120;
        o.ProbeEvery.DefaultValueFactory = _ => 0;
        o.CheckpointEvery.DefaultValueFactory = _ => 250;
        foreach (Option opt in new Option[] { checkpoint, tasks, glue, seeds, maxExamples, epochs, lr, batch, seq, batching, maxSteps, pretrainFolder, output })
            cmd.Options.Add(opt);
        if (defaultLevels != null) cmd.Options.Add(levels);
        if (handles != null) { handles.Epochs = epochs; handles.Lr = lr; handles.Batch = batch; handles.Output = output; handles.Checkpoint = checkpoint; }
        return r =>
        {
            string rerun = "nsparse " + string.Join(" ", r.Tokens.Select(t => t.Value.Contains(' ') ? $"\"{t.Value}\"" : t.Value));
            var template = o.Read(r, "", resume: true);
            template = template with { Train = template.Train with { LearningRate = StudyPretrainLr, BatchSize = StudyPretrainBatch } };
            string given = r.GetValue(checkpoint)!;
            bool pretrain = given == PretrainCheckpoint;
            float fineTuneLr = pretrain && r.GetResult(lr) is not { Implicit: false } ? QuickModelLr : r.GetValue(lr);
            return new EssentialStudyOptions
            {
                Checkpoint = pretrain ? null : CheckpointResolver.Resolve(given), Pretrain = template, PretrainFolder = r.GetValue(pretrainFolder),
                Tasks = r.GetValue(tasks)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries),
                GlueFolder = r.GetValue(glue), MaxExamples = r.GetValue(maxExamples),
                Levels = defaultLevels != null ? ParseLevels(r.GetValue(levels)!) : new[] { 0.5 },
                Seeds = r.GetValue(seeds), Device = template.Device, Threads = template.Threads, ReportFolder = r.GetValue(output)!, RerunCommand = rerun,
                Train = new Training.FinetuneSettings
                {
                    Epochs = r.GetValue(epochs), LearningRate = fineTuneLr, BatchSize = r.GetValue(batch), MaxSequenceLength = r.GetValue(seq),
                    MaxSteps = r.GetValue(maxSteps), Seed = template.Train.Seed, Batching = CommonOptions.ParseBatching(r.GetValue(batching)!),
                },
            };
        };
    }

    private static List<double> ParseLevels(string text)
    {
        var list = new List<double>();
        foreach (var part in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (!double.TryParse(part, NumberStyles.Float, CultureInfo.InvariantCulture, out double l) || !(l >= 0 && l < 1))
                throw new ArgumentException($"--levels: '{part}' is not a sparsity in [0, 1)");
            list.Add(l);
        }
        return list;
    }

    private static Command BuildAbrupt()
    {
        var cmd = new Command("abrupt", "Pre-train with sparsity probing on several data fractions and chart zero and small-magnitude counts, probe essential sparsity and accuracy against step.");
        var o = new PretrainCommand.Options();
        o.AddTo(cmd);
        // Quick defaults: minutes on 2 CPU cores with the tiny preset.
        o.Steps.DefaultValueFactory = _ => 400;
        o.Batch.DefaultValueFactory = _ => 16;
        o.Seq.DefaultValueFactory = _ => 64;
        o.Lr.DefaultValueFactory = _ => 1e-3f;
        o.Warmup.DefaultValueFactory = _ => 40;
        o.ProbeEvery.DefaultValueFactory = _ => 20;
        o.OmpEvery.DefaultValueFactory = _ => 200;
        o.CheckpointEvery.DefaultValueFactory = _ => 100;
        var fractions = new Option<string>("--data-fractions") { Description = "Comma-separated data fractions, one run and one curve each (same steps for all).", DefaultValueFactory = _ => "0.6,1.0" };
        var output = new Option<string>("--out") { Description = "Report folder.", DefaultValueFactory = _ => "reports/abrupt" };
        cmd.Options.Add(fractions);
        cmd.Options.Add(output);
        var vit = new VitPretrainOptions();
        vit.AddTo(cmd);
        fractions.Description += " With --model vit the default is 0.02,0.1 (1,100 and 5,500 training images) and the other unset options take quick ViT settings " +
                                 "(200 steps of 64 images, lr 1e-3, warm-up 20, weight decay 0.05, statistics every 20 steps, OMP every 100).";
        cmd.SetAction(r => CommandRunner.Run(() =>
        {
            bool isVit = vit.IsVit(r);
            var list = ParseFractions(isVit && r.GetResult(fractions) is not { Implicit: false } ? "0.02,0.1" : r.GetValue(fractions)!);
            string rerun = "nsparse " + string.Join(" ", r.Tokens.Select(t => t.Value.Contains(' ') ? $"\"{t.Value}\"" : t.Value));
            string summary = isVit
                ? AbruptStudy.RunVit(vit.Read(r, o, "", resume: true, VitQuickDefaults.Study with { DataFraction = 1.0 }), list, r.GetValue(output)!, rerun)
                : AbruptStudy.Run(o.Read(r, "", resume: true), list, r.GetValue(output)!, rerun);
            Console.WriteLine($"report: {summary}");
        }));
        return cmd;
    }

    private static Command BuildSslVsSl()
    {
        var cmd = new Command("ssl-vs-sl", "Pre-train the same model self-supervised (MLM) and supervised (WordNet supersense classification) with the same steps, seed and optimizer; chart their zero and small-magnitude counts, probe essential sparsity and final layer-wise |w| histograms.");
        var o = new PretrainCommand.Options();
        o.AddTo(cmd);
        // Quick defaults: a few minutes on 2 CPU cores with the tiny preset.
        o.Steps.DefaultValueFactory = _ => 300;
        o.Batch.DefaultValueFactory = _ => 16;
        o.Seq.DefaultValueFactory = _ => 64;
        o.Lr.DefaultValueFactory = _ => 1e-3f;
        o.Warmup.DefaultValueFactory = _ => 30;
        o.ProbeEvery.DefaultValueFactory = _ => 20;
        o.OmpEvery.DefaultValueFactory = _ => 100;
        o.CheckpointEvery.DefaultValueFactory = _ => 100;
        var task = new Option<string>("--task") { Description = "(BERT) WordNet task of the supervised run (supersense: gloss -> lexicographer file, 45 classes).", DefaultValueFactory = _ => "supersense" };
        var maxExamples = new Option<int>("--max-examples") { Description = "(BERT) Cap on the supervised task's examples per split (0: all).", DefaultValueFactory = _ => 0 }.NonNegative();
        var slBatches = new Option<int>("--sl-probe-batches") { Description = "(BERT) Dev batches per supervised probe evaluation.", DefaultValueFactory = _ => 16 }.Positive();
        var output = new Option<string>("--out") { Description = "Report folder.", DefaultValueFactory = _ => "reports/ssl-vs-sl" };
        cmd.Options.Add(task);
        cmd.Options.Add(maxExamples);
        cmd.Options.Add(slBatches);
        cmd.Options.Add(output);
        var vit = new VitPretrainOptions(withObjective: false);
        vit.AddTo(cmd);
        vit.Model.Description += " With vit: masked-patch prediction (SSL) vs 10-class supervised pre-training on Fashion-MNIST; unset options take quick ViT settings " +
                                 "(200 steps of 64 images, 10% of the training split, lr 1e-3, warm-up 20, weight decay 0.05, statistics every 20 steps, OMP every 100); --task, --max-examples and --sl-probe-batches are BERT-only.";
        cmd.SetAction(r => CommandRunner.Run(() =>
        {
            if (vit.IsVit(r))
            {
                string vitRerun = "nsparse " + string.Join(" ", r.Tokens.Select(t => t.Value.Contains(' ') ? $"\"{t.Value}\"" : t.Value));
                var vitTemplate = vit.Read(r, o, "", resume: true, VitQuickDefaults.Study);
                Console.WriteLine($"report: {SslVsSlStudy.RunVit(vitTemplate, r.GetValue(output)!, vitRerun)}");
                return;
            }
            var template = o.Read(r, "", resume: true);
            var sl = new SslVsSlOptions { Task = r.GetValue(task)!, MaxExamplesPerSplit = r.GetValue(maxExamples), SupervisedProbeBatches = r.GetValue(slBatches) };
            string rerun = "nsparse " + string.Join(" ", r.Tokens.Select(t => t.Value.Contains(' ') ? $"\"{t.Value}\"" : t.Value));
            string summary = SslVsSlStudy.Run(template, sl, r.GetValue(output)!, rerun);
            Console.WriteLine($"report: {summary}");
        }));
        return cmd;
    }

    private static List<double> ParseFractions(string text)
    {
        var list = new List<double>();
        foreach (var part in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (!double.TryParse(part, NumberStyles.Float, CultureInfo.InvariantCulture, out double f) || !(f > 0 && f <= 1))
                throw new ArgumentException($"--data-fractions: '{part}' is not a fraction in (0, 1]");
            list.Add(f);
        }
        if (list.Count == 0) throw new ArgumentException("--data-fractions: give at least one fraction");
        return list;
    }
}
