using NativeSparsity.Experiments.Commands;
using System.CommandLine;
using System.Globalization;
using NativeSparsity.Engine.Backends.Cpu;
using NativeSparsity.Engine.Sparsity;
using NativeSparsity.Engine.Tensors;
using NativeSparsity.Models.Bert;
using Spectre.Console;

namespace NativeSparsity.Experiments.Bench;

/// <summary>
/// `nsparse bench infer`: tokens per second of a BERT encoder's forward pass, dense against the
/// same pruned weights run through the sparse kernel (<see cref="BertModel"/> with sparseFrom), at
/// several global-magnitude sparsities. The two models run back to back in every repeat; the
/// speed-up is the median of per-repeat ratios, and the largest difference between their final
/// hidden states is printed as a check.
/// </summary>
public static class InferBench
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public static Command Build()
    {
        var cmd = new Command("infer", "Encoder forward tokens/s, dense vs the sparse kernel, of a BERT checkpoint (or a randomly initialised preset) pruned by global magnitude.");
        var checkpoint = new Option<string?>("--checkpoint") { Description = "BERT checkpoint folder (ours or Hugging Face's; dense or compressed)." };
        var preset = new Option<string>("--preset") { Description = "Without --checkpoint: a randomly initialised BERT of this size (tiny, mini, small, medium, base, large).", DefaultValueFactory = _ => "base" };
        var sparsities = new Option<string>("--sparsities") { Description = "comma-separated global-magnitude sparsities, pruned in increasing order", DefaultValueFactory = _ => "0.5,0.7,0.9" };
        var batch = new Option<int>("--batch") { Description = "sequences per forward", DefaultValueFactory = _ => 8 }.Positive();
        var seq = new Option<int>("--seq") { Description = "tokens per sequence", DefaultValueFactory = _ => 128 }.Positive();
        var threads = new Option<int>("--threads") { Description = "threads (0 = every core)", DefaultValueFactory = _ => 1 }.NonNegative();
        var repeats = new Option<int>("--repeats") { Description = "timed repeats after one warm-up", DefaultValueFactory = _ => 5 }.Positive();
        foreach (Option o in new Option[] { checkpoint, preset, sparsities, batch, seq, threads, repeats }) cmd.Options.Add(o);
        cmd.SetAction(r => Commands.CommandRunner.Run(() =>
        {
            var levels = ParseSparsities(r.GetValue(sparsities)!);
            Run(r.GetValue(checkpoint), r.GetValue(preset)!, levels, r.GetValue(batch), r.GetValue(seq), r.GetValue(threads), r.GetValue(repeats));
        }));
        return cmd;
    }

    /// <summary>"0.5,0.7,0.9": distinct sparsities in (0, 1), in increasing order.</summary>
    internal static double[] ParseSparsities(string list) =>
        list.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(t => double.TryParse(t, Inv, out var v) && v > 0 && v < 1 ? v : throw new ArgumentException($"--sparsities: '{t}' is not a sparsity in (0, 1)"))
            .Distinct().OrderBy(v => v).ToArray();

    public static void Run(string? checkpoint, string preset, double[] sparsities, int batch, int seq, int threads, int repeats)
    {
        if (Console.IsOutputRedirected) AnsiConsole.Profile.Width = 160;   // keep table rows on one line in logs
        var cpu = new CpuBackend(threads > 0 ? threads : Environment.ProcessorCount);
        var heads = new BertHeads(MaskedLm: false, NextSentence: false, Pooler: false);
        BertParameters p;
        if (checkpoint != null) p = BertCheckpoint.Load(checkpoint, cpu, heads).Parameters;
        else
        {
            p = new BertParameters(cpu, new BertParameterLayout(BertConfig.FromPreset(preset), heads));
            p.Initialize(1);
        }
        using (p)
        {
            var rng = new Random(7);
            var input = new BertBatch(batch, seq);
            for (int i = 0; i < input.InputIds.Length; i++) input.InputIds[i] = rng.Next(p.Config.VocabSize);
            Array.Fill(input.AttentionMask, 1);
            AnsiConsole.MarkupLine($"[bold]{Markup.Escape(checkpoint ?? $"random BERT-{preset}")}[/]: {p.Config.NumHiddenLayers} layers, hidden {p.Config.HiddenSize}; " +
                                   $"batch {batch} x {seq} tokens; {cpu.Threads} thread{(cpu.Threads > 1 ? "s" : "")}; sparse kernel {CpuBackend.SparseGemmKernel}; median of {repeats} repeats");
            var table = new Table().Border(TableBorder.Markdown).AddColumns("sparsity", "dense tokens/s", "sparse tokens/s", "speed-up", "max |diff| / max |h|");
            foreach (double s in sparsities)
            {
                Masks.GlobalMagnitude(p.PrunableSet(), s).Apply(cpu);
                using var dense = new BertModel(p, batch, seq);
                using var sparse = new BertModel(p, batch, seq, sparseFrom: 0);
                double Time(BertModel m) => GemmBench.Time(() => m.Forward(input, DropoutPlan.Off));
                Time(dense); Time(sparse);
                var d = new double[repeats];
                var sp = new double[repeats];
                for (int r = 0; r < repeats; r++)
                {
                    if (r % 2 == 0) { d[r] = Time(dense); sp[r] = Time(sparse); }
                    else { sp[r] = Time(sparse); d[r] = Time(dense); }
                }
                var hd = new float[dense.LastHidden.Length];
                var hs = new float[sparse.LastHidden.Length];
                cpu.CopyToHost<float>(dense.LastHidden, hd);
                cpu.CopyToHost<float>(sparse.LastHidden, hs);
                double diff = hd.Zip(hs, (a, b) => Math.Abs((double)a - b)).Max(), scale = hd.Max(v => Math.Abs((double)v));
                double tokens = (double)batch * seq;
                table.AddRow(s.ToString("P0", Inv), (tokens / GemmBench.Median(d)).ToString("F0", Inv), (tokens / GemmBench.Median(sp)).ToString("F0", Inv),
                             GemmBench.Median(d.Zip(sp, (a, b) => a / b).ToArray()).ToString("F2", Inv) + "x", (diff / scale).ToString("E1", Inv));
            }
            AnsiConsole.Write(table);
        }
    }
}
