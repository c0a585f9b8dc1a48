using System.CommandLine;
using System.Globalization;
using NativeSparsity.Engine.Backends.Cpu;
using NativeSparsity.Engine.Optim;
using NativeSparsity.Engine.Sparsity;
using NativeSparsity.Engine.Tensors;
using NativeSparsity.Models.Bert;
using Spectre.Console;

using NativeSparsity.Experiments.Commands;

namespace NativeSparsity.Experiments.Bench;

/// <summary>
/// `nsparse bench sparse-step`: one fixed-mask fine-tuning step (forward, backward, gradient norm,
/// masked AdamW, and for the sparse path the refresh of its CSR values) of a BERT with a
/// classification head, dense against the same mask through the sparse kernels
/// (<see cref="SparseEncoderWeights.ForTraining"/>, what `finetune --sparse` runs), at several
/// global-magnitude sparsities. The two steps alternate in every repeat; the speed-up is the
/// median of per-repeat ratios.
/// </summary>
public static class SparseStepBench
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public static Command Build()
    {
        var cmd = new Command("sparse-step", "Fine-tuning step time with a fixed global-magnitude mask, dense vs the sparse kernels (finetune --sparse).");
        var checkpoint = new Option<string>("--checkpoint") { Description = $"BERT checkpoint: {Commands.CheckpointResolver.Help}.", DefaultValueFactory = _ => "minilm-l6" };
        var sparsities = new Option<string>("--sparsities") { Description = "comma-separated global-magnitude sparsities, pruned in increasing order", DefaultValueFactory = _ => "0.5,0.7,0.8,0.9" };
        var batch = new Option<int>("--batch") { Description = "sequences per step", DefaultValueFactory = _ => 32 }.Positive();
        var seq = new Option<int>("--seq") { Description = "tokens per sequence", DefaultValueFactory = _ => 64 }.Positive();
        var threads = new Option<int>("--threads") { Description = "threads (0 = every core)", DefaultValueFactory = _ => 0 }.NonNegative();
        var repeats = new Option<int>("--repeats") { Description = "timed repeats after one warm-up", DefaultValueFactory = _ => 5 }.Positive();
        foreach (Option o in new Option[] { checkpoint, sparsities, batch, seq, threads, repeats }) cmd.Options.Add(o);
        cmd.SetAction(r => Commands.CommandRunner.Run(() =>
        {
            var levels = InferBench.ParseSparsities(r.GetValue(sparsities)!);
            Run(Commands.CheckpointResolver.Resolve(r.GetValue(checkpoint)!), levels, r.GetValue(batch), r.GetValue(seq), r.GetValue(threads), r.GetValue(repeats));
        }));
        return cmd;
    }

    public static void Run(string folder, double[] sparsities, int batch, int seq, int threads, int repeats)
    {
        if (batch < 1 || seq < 1 || repeats < 1) throw new ArgumentException("--batch, --seq and --repeats must be positive");
        if (Console.IsOutputRedirected) AnsiConsole.Profile.Width = 160;
        using var cpu = new CpuBackend(threads > 0 ? threads : Environment.ProcessorCount);
        var (p, _) = BertCheckpoint.Load(folder, cpu, BertHeads.SequenceClassification(2), initSeed: 1);
        using (p)
        {
            if (seq > p.Config.MaxPositionEmbeddings) throw new ArgumentException($"--seq {seq} exceeds the model's {p.Config.MaxPositionEmbeddings} positions");
            var rng = new Random(7);
            var input = new BertBatch(batch, seq) { Labels = Enumerable.Range(0, batch).Select(i => i % 2).ToArray() };
            for (int i = 0; i < input.InputIds.Length; i++) input.InputIds[i] = rng.Next(p.Config.VocabSize);
            Array.Fill(input.AttentionMask, 1);
            long total = p.Layout.TotalLength;
            var m = cpu.Allocate(DType.F32, checked((int)total));
            var v = cpu.Allocate(DType.F32, checked((int)total));
            var norm = cpu.Allocate(DType.F32, 1);
            AnsiConsole.MarkupLine($"[bold]{Markup.Escape(folder)}[/]: {p.Config.NumHiddenLayers} layers, hidden {p.Config.HiddenSize}; batch {batch} x {seq} tokens; " +
                                   $"{cpu.Threads} thread{(cpu.Threads > 1 ? "s" : "")}; sparse kernel {CpuBackend.SparseGemmKernel}; median of {repeats} repeats");
            var table = new Table().Border(TableBorder.Markdown)
                .AddColumns("sparsity", "sparse projections (dW sparse)", "dense step ms", "sparse step ms", "speed-up", "last loss dense / sparse (own dropout draws)");
            foreach (double s in sparsities)
            {
                var mask = Masks.GlobalMagnitude(p.PrunableSet(), s);
                mask.Apply(cpu);
                var keep = mask.Keep.U8Span().ToArray();
                var sparseWeights = SparseEncoderWeights.ForTraining(p, keep)!;
                int sampled = sparseWeights.WeightGradCount;
                using var dense = new BertModel(p, batch, seq);
                using var sparse = new BertModel(p, batch, seq, sparse: sparseWeights);
                // A tiny learning rate: the steps run the optimizer for real without moving the weights far between repeats.
                var optimizer = new AdamWOptimizer(p.OptimizerSegments(m, v, mask.Keep), LearningRateSchedule.LinearDecay(1e-9f, 1_000_000), maxGradNorm: 1f);
                double lossDense = 0, lossSparse = 0;
                double Step(BertModel model, bool refresh, ref double loss)
                {
                    double l = 0;
                    double ms = GemmBench.Time(() =>
                    {
                        p.ZeroGrads();
                        l = model.Forward(input, new DropoutPlan(true, 1, optimizer.Step, p.Config.HiddenDropoutProb, p.Config.AttentionProbsDropoutProb));
                        model.Backward();
                        cpu.SumOfSquares(p.Grads, norm);
                        optimizer.Update(cpu, norm);
                        if (refresh) sparseWeights.Refresh();
                    });
                    loss = l;
                    return ms;
                }
                Step(dense, true, ref lossDense); Step(sparse, true, ref lossSparse);
                var d = new double[repeats];
                var sp = new double[repeats];
                for (int r = 0; r < repeats; r++)
                {
                    // The dense step refreshes the CSR values too, so the sparse step that follows sees the weights it would.
                    if (r % 2 == 0) { d[r] = Step(dense, true, ref lossDense); sp[r] = Step(sparse, true, ref lossSparse); }
                    else { sp[r] = Step(sparse, true, ref lossSparse); d[r] = Step(dense, true, ref lossDense); }
                }
                table.AddRow(s.ToString("P0", Inv), $"{sparseWeights.Count} of {4 * p.Config.NumHiddenLayers} ({sampled})",
                             (1000 * GemmBench.Median(d)).ToString("F0", Inv), (1000 * GemmBench.Median(sp)).ToString("F0", Inv),
                             GemmBench.Median(d.Zip(sp, (a, b) => a / b).ToArray()).ToString("F2", Inv) + "x",
                             $"{lossDense.ToString("F4", Inv)} / {lossSparse.ToString("F4", Inv)}");
            }
            AnsiConsole.Write(table);
            m.Storage.Dispose(); v.Storage.Dispose(); norm.Storage.Dispose();
        }
    }
}
