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
        var profile = new Option<bool>("--profile") { Description = "Also time every backend op (synchronised around each call) and print a per-op table; slows the step a little." };
        foreach (Option o in new Option[] { preset, device, threads, batch, seq, vocab, steps, profile }) cmd.Options.Add(o);
        cmd.SetAction(r => CommandRunner.Run(() => Run(r.GetValue(preset)!, r.GetValue(device)!, r.GetValue(threads), r.GetValue(batch),
                                                        r.GetValue(seq), r.GetValue(vocab), r.GetValue(steps), r.GetValue(profile))));
        return cmd;
    }

    public static void Run(string preset, string device, int threads, int batchSize, int seq, int vocab, int steps, bool profile = false)
    {
        using var bare = BackendFactory.Create(device, out string name, threads);
        var profiler = profile ? new ProfilingBackend(bare) : null;
        IBackend be = profiler ?? bare;
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
        var gemm = bare is CpuBackend cpuBackend ? (cpuBackend.Profile = new GemmProfile()) : null;

        var fwd = new List<double>(); var bwd = new List<double>(); var optim = new List<double>(); var probe = new List<double>(); var gemmShare = new List<double>();
        double gemmFlops = 0, gemmSeconds = 0;
        var dropout = new DropoutPlan(true, 1, 0, cfg.HiddenDropoutProb, cfg.AttentionProbsDropoutProb);
        for (int s = 0; s <= steps; s++)
        {
            gemm?.Reset();
            if (s == 1) profiler?.Reset();   // the per-op table covers the timed steps only
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
        if (profiler != null) PrintProfile(profiler, steps, step);
    }

    internal static void PrintProfile(ProfilingBackend profiler, int steps, double stepMs)
    {
        Console.WriteLine();
        Console.WriteLine($"Per-op profile (--profile; ms per step over {steps} steps, each call synchronised; step {stepMs:F1} ms):");
        Console.WriteLine();
        Console.WriteLine("| op | calls/step | ms/step | % of step | GFLOP/s |");
        Console.WriteLine("|---|---:|---:|---:|---:|");
        double total = 0, gemmMs = 0;
        foreach (var (op, e) in profiler.Ops.OrderByDescending(kv => kv.Value.Seconds))
        {
            double ms = e.Seconds * 1000 / steps;
            total += ms;
            if (op.StartsWith("Gemm", StringComparison.Ordinal)) gemmMs += ms;
            string rate = e.Flops > 0 ? (e.Flops / e.Seconds / 1e9).ToString("F1") : "";
            Console.WriteLine($"| {op} | {e.Calls / (double)steps:0.#} | {ms:F2} | {ms / stepMs:P1} | {rate} |");
        }
        Console.WriteLine($"| all backend ops | | {total:F1} | {total / stepMs:P1} | |");
        Console.WriteLine($"| of which GEMM | | {gemmMs:F1} | {gemmMs / stepMs:P1} | |");
        // Families: everything that is not a GEMM, grouped by the op name without its shape.
        var families = profiler.Ops.Where(kv => !kv.Key.StartsWith("Gemm", StringComparison.Ordinal))
            .GroupBy(kv => kv.Key.Split(' ')[0])
            .Select(g => (Name: g.Key, Ms: g.Sum(kv => kv.Value.Seconds) * 1000 / steps))
            .OrderByDescending(f => f.Ms);
        Console.WriteLine();
        Console.WriteLine("Non-GEMM families, ms/step: " + string.Join(", ", families.Select(f => $"{f.Name} {f.Ms:F1}")));
    }
}
