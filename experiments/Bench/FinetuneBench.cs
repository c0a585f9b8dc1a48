using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using NativeSparsity.Engine.Backends;
using NativeSparsity.Engine.Backends.Cpu;
using NativeSparsity.Experiments.Commands;
using NativeSparsity.Experiments.Tasks;
using NativeSparsity.Experiments.Training;
using NativeSparsity.Models.Bert;
using NativeSparsity.Models.Text;

namespace NativeSparsity.Experiments.Bench;

/// <summary>
/// `nsparse bench finetune`: what a fine-tuning cell of the studies costs. Real fine-tuning steps of a
/// checkpoint on a task's real batches (the study's batch size, length cap and examples), for each
/// batching mode: milliseconds a step, real tokens a second (padding excluded), the share of padded
/// positions, the share of the step spent in GEMMs, and the time an epoch takes. The modes run back
/// to back in one process, so their ratio is the figure to trust on a shared machine.
/// </summary>
public static class FinetuneBench
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public static Command Build()
    {
        var cmd = new Command("finetune", "Time fine-tuning steps of a checkpoint on a task's real batches, for each batching mode (tokens/s, padding, GEMM share, epoch time).");
        var checkpoint = new Option<string>("--checkpoint") { Description = $"Checkpoint folder or {CheckpointResolver.Help}.", DefaultValueFactory = _ => "minilm-l6" };
        var task = new Option<string>("--task") { Description = $"Task: {string.Join(", ", WordNetTasks.Names)} or glue:NAME (with --glue-dir).", DefaultValueFactory = _ => "supersense" };
        var glue = new Option<string?>("--glue-dir") { Description = "Folder holding the GLUE tasks." };
        var maxExamples = new Option<int>("--max-examples") { Description = "Cap per split (0: all), as the study's --max-examples.", DefaultValueFactory = _ => 2000 }.NonNegative();
        var batch = new Option<int>("--batch-size") { Description = "Examples per step.", DefaultValueFactory = _ => 32 }.Positive();
        var seq = new Option<int>("--max-seq-len") { Description = "Maximum tokens per example.", DefaultValueFactory = _ => 64 }.Positive();
        var modes = new Option<string>("--batching") { Description = "Comma-separated batching modes to compare: padded, shuffled, by-length.", DefaultValueFactory = _ => "padded,shuffled,by-length" };
        var steps = new Option<int>("--steps") { Description = "Timed steps per mode after one warm-up step per distinct batch shape (median reported).", DefaultValueFactory = _ => 12 }.Positive();
        var profile = new Option<bool>("--profile") { Description = "Also time every backend op of the last mode (each call synchronised) and print a per-op table." };
        var device = CommonOptions.Device();
        var threads = CommonOptions.Threads();
        foreach (Option o in new Option[] { checkpoint, task, glue, maxExamples, batch, seq, modes, steps, profile, device, threads }) cmd.Options.Add(o);
        cmd.SetAction(r => CommandRunner.Run(() =>
        {
            var list = r.GetValue(modes)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(CommonOptions.ParseBatching).ToArray();
            if (list.Length == 0) throw new ArgumentException("--batching: give at least one mode");
            Run(CheckpointResolver.Resolve(r.GetValue(checkpoint)!), FinetuneCommand.LoadTask(r.GetValue(task)!, r.GetValue(glue), r.GetValue(maxExamples)),
                r.GetValue(batch), r.GetValue(seq), list, r.GetValue(steps), r.GetValue(profile), r.GetValue(device)!, r.GetValue(threads));
        }));
        return cmd;
    }

    private static string ModeName(FinetuneBatching mode) => mode switch
    {
        FinetuneBatching.Padded => "padded",
        FinetuneBatching.Shuffled => "shuffled",
        _ => "by-length",
    };

    public static void Run(string checkpoint, ClassificationTask task, int batchSize, int maxSeq, FinetuneBatching[] modes, int steps, bool profile, string device, int threads)
    {
        using var bare = BackendFactory.Create(device, out string backendName, threads);
        var tokenizer = Tokenizers.LoadFor(checkpoint, BertCheckpoint.ReadConfig(checkpoint).VocabSize);
        Console.WriteLine($"# fine-tuning step bench: {checkpoint}, task {task.Name} ({task.Train.Count} training examples), batch {batchSize}, " +
                          $"at most {maxSeq} tokens, on {backendName}");
        Console.WriteLine($"# {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC; median of {steps} steps per mode (the first {steps} batches of epoch 1), after a warm-up step per batch shape");
        Console.WriteLine();
        Console.WriteLine("| batching | batches | padded positions | ms/step | real tokens/s | GEMM share | GEMM GFLOP/s | epoch (s) | activations (MiB) |");
        Console.WriteLine("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        ProfilingBackend? profiler = null;
        double? firstEpoch = null;
        var summary = new List<string>();
        for (int m = 0; m < modes.Length; m++)
        {
            bool last = m == modes.Length - 1;
            profiler = profile && last ? new ProfilingBackend(bare) : null;
            IBackend be = profiler ?? bare;
            var settings = new FinetuneSettings { BatchSize = batchSize, MaxSequenceLength = maxSeq, LearningRate = 1e-4f, Epochs = 1, Batching = modes[m] };
            using var parameters = BertFinetuner.LoadForTask(checkpoint, be, task, settings.Seed);
            using var tuner = new BertFinetuner(parameters, task, tokenizer, settings);
            var batches = tuner.TrainingBatches(0).ToList();
            long realTokens = batches.Sum(b => (long)b.Batch.AttentionMask.Count(x => x != 0));
            long positions = batches.Sum(b => (long)b.Batch.Batch * b.Batch.Seq);
            var timed = batches.Take(steps).ToList();
            var clock = Stopwatch.StartNew();
            // Warm-up: one step per distinct shape in the timed set, so allocation and first touch stay out of the figures.
            foreach (var shape in timed.GroupBy(b => (b.Batch.Batch, b.Batch.Seq))) tuner.TrainStep(shape.First(), clock);
            var gemm = bare is CpuBackend cpu ? (cpu.Profile = new GemmProfile()) : null;
            profiler?.Reset();
            var ms = new List<double>();
            var msPerRealToken = new List<double>();
            var gemmShare = new List<double>();
            double gemmFlops = 0, gemmSeconds = 0;
            foreach (var b in timed)
            {
                gemm?.Reset();
                long t0 = Stopwatch.GetTimestamp();
                tuner.TrainStep(b, clock);
                be.Synchronize();
                double t = (Stopwatch.GetTimestamp() - t0) * 1000.0 / Stopwatch.Frequency;
                ms.Add(t);
                msPerRealToken.Add(t / b.Batch.AttentionMask.Count(x => x != 0));
                if (gemm != null) { gemmShare.Add(gemm.Seconds * 1000 / t); gemmFlops += gemm.Flops; gemmSeconds += gemm.Seconds; }
            }
            if (bare is CpuBackend c) c.Profile = null;
            // The epoch estimate scales the median cost of a real token by the epoch's real tokens: batches of different
            // lengths cost differently, and the median per-token cost is robust to a noisy neighbour.
            double epochSeconds = Median(msPerRealToken) * realTokens / 1000;
            firstEpoch ??= epochSeconds;
            Console.WriteLine($"| {ModeName(modes[m])} | {batches.Count} | {1 - (double)realTokens / positions:P1} | {Median(ms):F0} | " +
                              $"{1000 / Median(msPerRealToken):F0} | {(gemm != null ? Median(gemmShare).ToString("P1", Inv) : "")} | " +
                              $"{(gemmSeconds > 0 ? (gemmFlops / gemmSeconds / 1e9).ToString("F1", Inv) : "")} | {epochSeconds:F1} | {tuner.ActivationBytes / (1024.0 * 1024):F0} |");
            if (m > 0) summary.Add($"{ModeName(modes[m])} {firstEpoch / epochSeconds:F2}x");
            if (profiler != null)
            {
                Console.WriteLine();
                TrainBench.PrintProfile(profiler, timed.Count, ms.Sum() / timed.Count);
            }
        }
        if (summary.Count > 0)
        {
            Console.WriteLine();
            Console.WriteLine($"epoch speed-up against {ModeName(modes[0])}: {string.Join(", ", summary)}");
        }
    }

    private static double Median(List<double> x)
    {
        var s = x.OrderBy(y => y).ToList();
        return s.Count % 2 == 1 ? s[s.Count / 2] : (s[s.Count / 2 - 1] + s[s.Count / 2]) / 2;
    }
}
