using System.CommandLine;
using NativeSparsity.Engine.Backends.Cpu;
using NativeSparsity.Engine.Sparsity;
using NativeSparsity.Models.Bert;
using NativeSparsity.Models.Transformer;
using Spectre.Console;

namespace NativeSparsity.Experiments.Commands;

/// <summary>`nsparse inspect DIR`: what a checkpoint holds and how sparse it is.</summary>
public static class InspectCommand
{
    public static Command Build()
    {
        var cmd = new Command("inspect", "Show a checkpoint's config, parameter counts (total, prunable) and per-layer sparsity and its size dense and compressed (ours or a Hugging Face BERT folder, dense or compressed).");
        var dir = new Argument<string>("dir") { Description = $"Checkpoint folder (config.json + model.safetensors), or {CheckpointResolver.Help}." };
        cmd.Arguments.Add(dir);
        cmd.SetAction(r => CommandRunner.Run(() => Inspect(CheckpointResolver.Resolve(r.GetValue(dir)!))));
        return cmd;
    }

    public static void Inspect(string folder)
    {
        var heads = BertHeadDetection.Detect(folder);
        using var cpu = new CpuBackend();
        var (p, report) = BertCheckpoint.Load(folder, cpu, heads);
        using (p)
        {
            var c = p.Config;
            Console.WriteLine($"checkpoint: {Path.GetFullPath(folder)}");
            Console.WriteLine($"config: {c.NumHiddenLayers} layers, hidden {c.HiddenSize}, {c.NumAttentionHeads} heads, intermediate {c.IntermediateSize}, " +
                              $"vocabulary {c.VocabSize}, max positions {c.MaxPositionEmbeddings}");
            Console.WriteLine($"heads: MLM {(heads.MaskedLm ? "yes" : "no")}, NSP {(heads.NextSentence ? "yes" : "no")}, pooler {(heads.Pooler ? "yes" : "no")}, classifier {(heads.ClassifierLabels > 0 ? $"{heads.ClassifierLabels} labels" : "no")}");
            long encoderOnly = p.Layout.Slots.Where(s => s.Name.StartsWith("bert.", StringComparison.Ordinal)).Sum(s => s.Length);
            Console.WriteLine($"parameters: {p.Layout.ParameterCount:N0} in all, {encoderOnly:N0} in BertModel (embeddings, encoder, pooler), " +
                              $"{p.Layout.PrunableLength:N0} prunable ({100.0 * p.Layout.PrunableLength / p.Layout.ParameterCount:F1}%)");
            var sizes = CompressedCheckpoint.MeasureSizes(folder);
            Console.WriteLine($"model.safetensors: {CompressedCheckpoint.FormatBytes(sizes.OnDisk)} on disk" +
                              (sizes.StoredCompressed > 0 ? $" ({sizes.StoredCompressed} matrices in sparse-bitmask layout)" : "") +
                              $"; {CompressedCheckpoint.FormatBytes(sizes.Dense)} dense; {CompressedCheckpoint.FormatBytes(sizes.Compressed)} with the prunable matrices in sparse-bitmask layout (nsparse compress)");
            if (report.Unexpected.Count > 0) Console.WriteLine($"not loaded (unknown to this model): {string.Join(", ", report.Unexpected.Take(8))}{(report.Unexpected.Count > 8 ? ", ..." : "")}");

            var stats = SparsityStatistics.Compute(p.PrunableSet(), new SparsityStatisticsOptions { SweepSparsities = GlobalMagnitudeThreshold.DefaultSweep });
            var table = new Table().Title("prunable weights by layer").AddColumns("layer", "weights", "exact zeros", "|w| < 1e-3", "|w| < 1e-2");
            foreach (var layer in stats.Counts.Where(r => r.Scope is "layer" or "total").GroupBy(r => r.Name))
            {
                var zero = layer.First(r => r.Criterion == "exact_zero");
                string Share(double t) => $"{layer.First(r => r.Criterion == "abs_below" && Math.Abs(r.Threshold - t) < 1e-9).Fraction:P2}";
                table.AddRow(layer.Key, zero.Total.ToString("N0"), $"{zero.Count:N0} ({zero.Fraction:P2})", Share(1e-3), Share(1e-2));
            }
            AnsiConsole.Write(table);
            Console.WriteLine("global magnitude thresholds: " + string.Join("  ", stats.GlobalThresholds.Select(t => $"{t.Sparsity:P0}: {t.Threshold:G4}")));
        }
    }
}
