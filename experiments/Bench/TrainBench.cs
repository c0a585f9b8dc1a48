using System.CommandLine;
using System.Diagnostics;
using NativeSparsity.Engine.Backends;
using NativeSparsity.Engine.Backends.Cpu;
using NativeSparsity.Engine.Optim;
using NativeSparsity.Engine.Sparsity;
using NativeSparsity.Engine.Tensors;
using NativeSparsity.Experiments.Commands;
using NativeSparsity.Models.Bert;

namespace NativeSparsity.Experiments.Bench;

/// <summary>
/// `nsparse bench train`: one MLM pre-training step of a preset on random tokens, split into
/// forward, backward, optimizer (gradient norm + AdamW) and the statistics part of the sparsity
/// probe; tokens/s, model FLOPs per token, and on the CPU the share of the step spent in GEMMs
/// and the GEMM rate achieved.
/// </summary>
public static class TrainBench
{
    public static Command Build()
    {
        var cmd = new Command("train", "Time the pre-training step (forward, backward, optimizer, probe statistics) of a BERT preset.");
        var preset = CommonOptions.Preset();
        var device = CommonOptions.Device();
        var threads = CommonOptions.Threads();
        var batch = new Option<int>("--batch-size") { DefaultValueFactory = _ => 32, Description = "Sequences per step." }.Positive();
        var seq = new Option<int>("--seq-len") { DefaultValueFactory = _ => 128, Description = "Tokens per sequence." }.Positive();
        var vocab = new Option<int>("--vocab-size") { DefaultValueFactory = _ => 8192, Description = "Vocabulary size." }.Positive();
        var steps = new Option<int>("--steps") { DefaultValueFactory = _ => 5, Description = "Timed steps after one warm-up step (median reported)." }.Positive();
        foreach (Option o in new Option[] { preset, device, threads, batch, seq, vocab, steps }) cmd.Options.Add(o);
        cmd.SetAction(r => CommandRunner.Run(() => Run(r.GetValue(preset)!, r.GetValue(device)!, r.GetValue(threads), r.GetValue(batch),
                                                        r.GetValue(seq), r.GetValue(vocab), r.GetValue(steps))));
        return cmd;
    }

    public static void Run(string preset, string device, int threads, int batchSize, int seq, int vocab, int steps)
    {
        using var be = BackendFactory.Create(device, out string name, threads);
        var cfg = BertConfig.FromPreset(preset, vocab, Math.Max(512, seq));
        using var p = new BertParameters(be, new BertParameterLayout(cfg, BertHeads.PreTraining));
        p.Initialize(1);
        using var model = new BertModel(p, batchSize, seq);
        using var arena = new TensorArena(be);
        int total = checked((int)p.Layout.TotalLength);
        Tensor m = arena.F32(total), v = arena.F32(total), sumsq = arena.F32(1);
        var opt = new AdamWOptimizer(new[] { new AdamWSegment(p.Values, p.Grads, m, v, null, true) },
                                     LearningRateSchedule.Constant(1e-4f), weightDecay: 0.01f, maxGradNorm: 1f);
        var rng = new System.Random(1);
        var batch = new BertBatch(batchSize, seq);
        for (int i = 0; i < batch.InputIds.Length; i++) { batch.InputIds[i] = 5 + rng.Next(vocab - 5); batch.AttentionMask[i] = 1; }
        new MlmMasking(3, 5, vocab).Apply(batch, 1, 0);
        var gemm = be is CpuBackend cpuBackend ? (cpuBackend.Profile = new GemmProfile()) : null;

        var fwd = new List<double>(); var bwd = new List<double>(); var optim = new List<double>(); var probe = new List<double>(); var gemmShare = new List<double>();
        double gemmFlops = 0, gemmSeconds = 0;
        var dropout = new DropoutPlan(true, 1, 0, cfg.HiddenDropoutProb, cfg.AttentionProbsDropoutProb);
        for (int s = 0; s <= steps; s++)
        {
            gemm?.Reset();
            var t0 = Stopwatch.GetTimestamp();
            p.ZeroGrads();
            model.Forward(batch, dropout with { Step = s });
            be.Synchronize();
            var t1 = Stopwatch.GetTimestamp();
            model.Backward();
            be.Synchronize();
            var t2 = Stopwatch.GetTimestamp();
            be.SumOfSquares(p.Grads, sumsq);
            opt.Update(be, sumsq);
            be.Synchronize();
            var t3 = Stopwatch.GetTimestamp();
            if (p.Values.Storage is CpuStorage)
                SparsityStatistics.Compute(p.PrunableSet(), new SparsityStatisticsOptions());
            var t4 = Stopwatch.GetTimestamp();
            if (s == 0) continue;   // warm-up: JIT, first-touch of buffers
            double Ms(long a, long b) => (b - a) * 1000.0 / Stopwatch.Frequency;
            fwd.Add(Ms(t0, t1)); bwd.Add(Ms(t1, t2)); optim.Add(Ms(t2, t3)); probe.Add(Ms(t3, t4));
            if (gemm != null)
            {
                gemmShare.Add(gemm.Seconds * 1000 / Ms(t0, t3));
                gemmFlops += gemm.Flops; gemmSeconds += gemm.Seconds;
            }
        }
        double Median(List<double> x) { var s = x.OrderBy(y => y).ToList(); return s.Count % 2 == 1 ? s[s.Count / 2] : (s[s.Count / 2 - 1] + s[s.Count / 2]) / 2; }
        double step = Median(fwd) + Median(bwd) + Median(optim);
        long tokens = (long)batchSize * seq;
        // Model FLOPs per token: 6 x (non-embedding matmul parameters) for forward+backward, plus
        // attention scores and context (2 x 2 x seq x hidden per layer forward, x3 with backward),
        // plus the MLM head on the masked 15% (transform + decoder).
        double perToken = 6.0 * (p.Layout.PrunableLength) + 12.0 * cfg.NumHiddenLayers * seq * cfg.HiddenSize
                          + 0.15 * 6.0 * (cfg.HiddenSize * (double)cfg.HiddenSize + cfg.HiddenSize * (double)vocab);
        Console.WriteLine($"# train step bench: {preset} ({cfg.NumHiddenLayers} layers, hidden {cfg.HiddenSize}), batch {batchSize} x seq {seq}, vocab {vocab}, on {name}");
        Console.WriteLine($"# {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC, median of {steps} steps after one warm-up");
        Console.WriteLine();
        Console.WriteLine("| part | ms |");
        Console.WriteLine("|---|---:|");
        Console.WriteLine($"| forward | {Median(fwd):F1} |");
        Console.WriteLine($"| backward | {Median(bwd):F1} |");
        Console.WriteLine($"| optimizer (grad norm + AdamW) | {Median(optim):F1} |");
        Console.WriteLine($"| step (sum) | {step:F1} |");
        Console.WriteLine($"| probe statistics (not in the step) | {Median(probe):F1} |");
        Console.WriteLine();
        Console.WriteLine($"tokens/s: {tokens / (step / 1000):F0}; model FLOPs per token: {perToken / 1e6:F2} M; achieved {perToken * tokens / (step / 1000) / 1e9:F1} GFLOP/s");
        if (gemm != null)
            Console.WriteLine($"GEMM share of the step: {Median(gemmShare):P1}; GEMM work {gemmFlops / steps / 1e9:F1} GFLOP per step at {gemmFlops / gemmSeconds / 1e9:F1} GFLOP/s " +
                              "(compare `nsparse bench gemm` for this machine's peak)");
    }
}
