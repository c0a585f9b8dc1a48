using NativeSparsity.Engine.IO;
using System.CommandLine;
using NativeSparsity.Engine.Backends.Cpu;
using NativeSparsity.Engine.Sparsity;
using NativeSparsity.Models.Bert;
using NativeSparsity.Models.Text;
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
        BertParameters p; BertLoadReport report;
        // The load checks every weight; only a refused load pays for counting per tensor.
        try { (p, report) = BertCheckpoint.Load(folder, cpu, heads); }
        catch (SafetensorsException) { RefuseNonFinite(folder); throw; }
        using (p)
        {
            var c = p.Config;
            var tokenizer = Tokenizers.LoadFor(folder, c.VocabSize);
            Console.WriteLine($"checkpoint: {Path.GetFullPath(folder)}");
            Console.WriteLine($"config: {c.NumHiddenLayers} layers, hidden {c.HiddenSize}, {c.NumAttentionHeads} heads, intermediate {c.IntermediateSize}, " +
                              $"vocabulary {c.VocabSize}, max positions {c.MaxPositionEmbeddings}");
            Console.WriteLine($"tokenizer: {tokenizer.GetType().Name}, {tokenizer.VocabSize:N0} tokens (= vocab_size), special tokens present");
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

    /// <summary>Counts NaN and infinities in every float tensor of the weights; prints them per tensor and refuses (exit 2).</summary>
    private static void RefuseNonFinite(string folder)
    {
        string path = Path.Combine(folder, BertCheckpoint.WeightsFile);
        if (!File.Exists(path)) return; // the load below names what is missing
        using var file = SafetensorsFile.Open(path);
        var bad = file.Tensors.Where(t => t.DType is SafetensorsDType.F32 or SafetensorsDType.BF16 or SafetensorsDType.F16 or SafetensorsDType.F64)
            .Select(t => (t.Name, Count: file.CountNonFinite(t.Name))).Where(t => t.Count > 0).ToList();
        if (bad.Count == 0) return;
        foreach (var (name, count) in bad) Console.WriteLine($"non-finite: {name}: {count:N0} values (NaN or infinity)");
        throw new InvalidDataException($"{path}: {bad.Count} tensor{(bad.Count == 1 ? "" : "s")} hold non-finite values ({bad.Sum(b => b.Count):N0} in all), first '{bad[0].Name}'");
    }
}
