using System.Globalization;
using System.Text;
using NativeSparsity.Experiments.Reporting;
using NativeSparsity.Experiments.Training;
using NativeSparsity.Experiments.Vision;
using NativeSparsity.Models.Vision;
using NativeSparsity.Engine.IO;

namespace NativeSparsity.Experiments.Studies;

/// <summary>
/// The abrupt-sparsification study (paper, claims 2 and 3): pre-train the same model on several
/// data fractions for the same number of steps while probing, then draw zero and small-magnitude
/// counts, probe essential sparsity and held-out accuracy (MLM; for a ViT top-1 or masked-pixel R²) against step, one curve per fraction,
/// and name the window of the sharpest rise. Runs that finished are reused; unfinished ones resume.
/// </summary>
public static class AbruptStudy
{
    /// <summary>What the report says about the runs: the settings sentence and what the dense "accuracy" is.</summary>
    /// <param name="Settings">The Markdown sentence describing model, data and schedule.</param>
    /// <param name="AccuracyName">Column header of the final dense accuracy (e.g. "final MLM accuracy").</param>
    /// <param name="AccuracyTitle">Title of the accuracy chart.</param>
    /// <param name="AccuracyPng">File name of the accuracy chart.</param>
    /// <param name="AccuracyFormat">Format of the accuracy in the table (P1: a percentage).</param>
    public sealed record ReportText(string Settings, string AccuracyName, string AccuracyTitle, string AccuracyPng, string AccuracyFormat = "P1");

    public static string Run(PretrainRunOptions template, IReadOnlyList<double> fractions, string reportFolder, string rerunCommand) =>
        Run(fractions, template.Train.Steps, reportFolder, rerunCommand, BertText(template),
            (f, folder) => PretrainRun.Run(template with { OutputFolder = folder, DataFraction = f, Resume = true }));

    /// <summary>
    /// The study for a ViT on Fashion-MNIST (or on <paramref name="data"/>, train and validation images):
    /// one run of <paramref name="template"/>'s objective per data fraction.
    /// </summary>
    public static string RunVit(VitPretrainRunOptions template, IReadOnlyList<double> fractions, string reportFolder, string rerunCommand,
                                (LabeledImages Train, LabeledImages Validation)? data = null)
    {
        var loaded = data ?? VitPretrainRun.LoadFashionMnist(template.DataFolder, Console.WriteLine);
        return Run(fractions, template.Train.Steps, reportFolder, rerunCommand, VitText(template, loaded.Train.Count, loaded.Validation.Count),
            (f, folder) => VitPretrainRun.Run(template with { OutputFolder = folder, DataFraction = f, Resume = true }, loaded));
    }

    /// <summary>
    /// Runs <paramref name="train"/>(fraction, run folder) for every fraction whose run in
    /// runs/fraction-F is not finished (a run that trained <paramref name="steps"/> steps is reused),
    /// then writes the report.
    /// </summary>
    public static string Run(IReadOnlyList<double> fractions, long steps, string reportFolder, string rerunCommand, ReportText text,
                             Func<double, string, PretrainRunSummary> train)
    {
        using var folderLock = FolderLock.Acquire(reportFolder, "study abrupt");
        var runs = new List<(double Fraction, string Folder, PretrainRunSummary? Summary)>();
        foreach (double f in fractions)
        {
            string folder = Path.Combine(reportFolder, "runs", string.Create(CultureInfo.InvariantCulture, $"fraction-{f:0.###}"));
            string? last = PretrainRun.LatestCheckpoint(Path.Combine(folder, PretrainRun.CheckpointsFolder));
            if (last != null && last.EndsWith($"step-{steps:D7}", StringComparison.Ordinal) && File.Exists(Path.Combine(folder, "probe.csv")))
            {
                Console.WriteLine($"fraction {f}: finished run found in {folder}, reused");
                runs.Add((f, folder, null));
                continue;
            }
            Console.WriteLine($"== fraction {f}: pre-training into {folder}");
            runs.Add((f, folder, train(f, folder)));
        }
        return WriteReport(text, runs, reportFolder, rerunCommand);
    }

    private static ReportText BertText(PretrainRunOptions o) => new(
        $"Model preset **{o.Preset}**, {o.Train.Steps} steps of {o.Train.BatchSize}x{o.Train.SequenceLength} tokens, lr {o.Train.LearningRate} " +
        $"(warm-up {o.Train.WarmupSteps}, linear decay), weight decay {o.Train.WeightDecay}, seed {o.Train.Seed}, " +
        $"data {(o.Data is not { Count: > 0 } ? "embedded WordNet 3.0" : string.Join(" ", o.Data))}, vocabulary {o.VocabSize}, sparsity statistics every {o.Probe.Every} steps, " +
        $"OMP probe every {(o.Probe.OmpEvery > 0 ? o.Probe.OmpEvery : o.Probe.Every)} steps ({o.Probe.EvalBatches} held-out batches, epsilon {o.Probe.Epsilon * 100:0.##} points).",
        "final MLM accuracy", "Held-out masked-token accuracy (dense)", "mlm_accuracy_vs_step.png");

    private static ReportText VitText(VitPretrainRunOptions o, int trainImages, int validationImages)
    {
        bool supervised = o.Objective == VitObjective.Supervised;
        string metric = supervised
            ? "top-1 accuracy on the validation images"
            : "R² of the hidden pixels (1 - MSE / variance of the targets), so epsilon is in points of variance explained";
        return new ReportText(
            $"ViT preset **{o.Preset}** (patch {o.PatchSize}), objective {VitPretrainRun.Describe(o.Objective, o.MaskRatio)}, {o.Train.Steps} steps of {o.Train.BatchSize} images, " +
            $"lr {o.Train.LearningRate} (warm-up {o.Train.WarmupSteps}, linear decay), weight decay {o.Train.WeightDecay}, clip {o.Train.MaxGradNorm}, seed {o.Train.Seed}, " +
            $"augmentation random crop (padding 2) + horizontal flip; data: each fraction of {trainImages} training images (stratified), {validationImages} validation images; " +
            $"sparsity statistics every {o.Probe.Every} steps, OMP probe every {(o.Probe.OmpEvery > 0 ? o.Probe.OmpEvery : o.Probe.Every)} steps " +
            $"({o.Probe.EvalBatches} validation batches, no augmentation; probe metric: {metric}; epsilon {o.Probe.Epsilon * 100:0.##} points).",
            supervised ? "final top-1 accuracy" : "final masked-pixel R²",
            supervised ? "Validation top-1 accuracy (dense)" : "Validation masked-pixel R² (dense)", "accuracy_vs_step.png");
    }

    /// <summary>Smallest jump the report calls a sudden rise: 0.1% of the prunable weights.</summary>
    public const double MinJumpShare = 0.001;

    private static string CriterionText(string column) =>
        column == "zeros" ? "exact zeros"
        : column.StartsWith("abs_below_", StringComparison.Ordinal) ? "|w| < " + column["abs_below_".Length..]
        : column.StartsWith("rel_std_below_", StringComparison.Ordinal) ? $"|w| < {column["rel_std_below_".Length..]} x its matrix's std"
        : column;

    /// <summary>The changepoint verdict (<see cref="Changepoint"/>) per fraction and criterion, on shares of the prunable weights.</summary>
    private static void AppendChangepoints(StringBuilder md, List<(double Fraction, ProbeTable Table)> tables, List<string> columns)
    {
        md.AppendLine("## Sudden rises (changepoint test)").AppendLine();
        md.AppendLine($"Each curve (a share of the prunable weights against step) is fitted twice by least squares: a cubic spline with a knot every 10% of the run, " +
                      $"and the same spline plus a level shift at one probe step (searched over all but the first and last {Changepoint.TrimFraction:P0} of the probes). " +
                      $"A rise is **sudden** when the shift model wins by more than {Changepoint.MinDeltaBic} in BIC, the shift is upward and it is at least " +
                      $"{MinJumpShare:P1} of the prunable weights; a cell gives the first probe step after the jump, the jump and the BIC margin " +
                      "(tested on synthetic curves with and without a jump: tests/Experiments/ChangepointTests.cs).").AppendLine();
        md.AppendLine($"| data fraction | {string.Join(" | ", columns.Select(CriterionText))} |");
        md.AppendLine($"| --- |{string.Concat(columns.Select(_ => " --- |"))}");
        foreach (var (f, t) in tables)
        {
            var steps = t.Column("step");
            var total = t.Column("total");
            var cells = columns.Select(c =>
            {
                var share = t.Column(c).Select((v, i) => v / total[i]).ToArray();
                var r = Changepoint.DetectRise(steps, share, MinJumpShare);
                if (double.IsNaN(r.DeltaBic)) return "too few probes or flat";
                return r.Abrupt
                    ? $"**step {r.Step:0}** (+{r.Height * 100:0.##} points, ΔBIC {r.DeltaBic:0})"
                    : $"none (best shift {r.Height * 100:+0.##;-0.##;0} points at step {r.Step:0}, ΔBIC {r.DeltaBic:0})";
            });
            md.AppendLine($"| {f:0.###} | {string.Join(" | ", cells)} |");
        }
        md.AppendLine();
    }

    private static string WriteReport(ReportText text, List<(double Fraction, string Folder, PretrainRunSummary? Summary)> runs, string folder, string rerun)
    {
        var tables = runs.Select(r => (r.Fraction, Table: new ProbeTable(Path.Combine(r.Folder, "probe.csv")), r.Summary)).ToList();
        string Label(double f) => $"{f * 100:0.#}% of the data";
        string smallColumn = tables[0].Table.Header.FirstOrDefault(h => h.StartsWith("abs_below_1e-3", StringComparison.Ordinal))
                             ?? tables[0].Table.Header.First(h => h.StartsWith("abs_below", StringComparison.Ordinal));
        Series S(string column, double f, ProbeTable t, bool fraction)
        {
            var x = t.Column("step");
            var y = t.Column(column);
            if (fraction) { var total = t.Column("total"); y = y.Select((v, i) => v / total[i]).ToArray(); }
            // OMP columns are empty at probes that skipped the evaluations.
            var keep = y.Select((v, i) => (v, i)).Where(p => !double.IsNaN(p.v)).Select(p => p.i).ToArray();
            return new Series(Label(f), keep.Select(i => x[i]).ToArray(), keep.Select(i => y[i]).ToArray());
        }
        var zerosPng = Path.Combine(folder, "zeros_vs_step.png");
        Plots.Lines(zerosPng, "Exact zeros in the prunable weights during pre-training", "step", "exact zeros (count)",
            tables.Select(t => S("zeros", t.Fraction, t.Table, false)));
        var smallPng = Path.Combine(folder, "small_magnitude_vs_step.png");
        Plots.Lines(smallPng, $"Share of prunable weights with {smallColumn.Replace("abs_below_", "|w| < ")}", "step", "share of prunable weights",
            tables.Select(t => S(smallColumn, t.Fraction, t.Table, true)), percentY: true);
        // Every other criterion the probe logs, one chart each, and the global thresholds at 50% and 90%.
        var shareColumns = tables[0].Table.Header
            .Where(h => (h.StartsWith("abs_below", StringComparison.Ordinal) || h.StartsWith("rel_std_below", StringComparison.Ordinal)) && h != smallColumn).ToList();
        foreach (string column in shareColumns)
            Plots.Lines(Path.Combine(folder, $"share_{column}_vs_step.png"), $"Share of prunable weights with {CriterionText(column)}", "step",
                "share of prunable weights", tables.Select(t => S(column, t.Fraction, t.Table, true)), percentY: true);
        var thresholdColumns = new[] { "threshold_50", "threshold_90" }.Where(tables[0].Table.Has).ToList();
        if (thresholdColumns.Count > 0)
            Plots.Lines(Path.Combine(folder, "global_thresholds_vs_step.png"), "Global magnitude threshold (|w| below which 50% / 90% of the prunable weights lie)",
                "step", "|w|", tables.SelectMany(t => thresholdColumns.Select(c => S(c, t.Fraction, t.Table, false) with
                    { Label = $"{Label(t.Fraction)}, {c.Replace("threshold_", "")}%" })));
        var essentialPng = Path.Combine(folder, "probe_essential_sparsity_vs_step.png");
        Plots.Lines(essentialPng, "Probe essential sparsity (OMP without fine-tuning, MLM accuracy within epsilon)", "step", "sparsity",
            tables.Select(t => S("probe_essential_sparsity", t.Fraction, t.Table, false)), percentY: true);
        var accuracyPng = Path.Combine(folder, text.AccuracyPng);
        Plots.Lines(accuracyPng, text.AccuracyTitle, "step", "accuracy",
            tables.Select(t => S("dense_accuracy", t.Fraction, t.Table, false)), percentY: true);

        // One combined CSV with the fraction as first column.
        var csv = new StringBuilder("data_fraction," + string.Join(",", tables[0].Table.Header) + "\n");
        foreach (var (f, t, _) in tables)
            foreach (var line in File.ReadAllLines(t.Path).Skip(1).Where(l => l.Length > 0))
                csv.Append(f.ToString("R", CultureInfo.InvariantCulture)).Append(',').Append(line).Append('\n');
        File.WriteAllText(Path.Combine(folder, "abrupt.csv"), csv.ToString());

        var md = new StringBuilder();
        md.AppendLine("# Abrupt sparsification during pre-training").AppendLine();
        md.AppendLine(text.Settings).AppendLine();
        md.AppendLine("The sharpest rise is the probe window with the largest increase per step; the window is the probe interval.").AppendLine();
        md.AppendLine($"| data fraction | {text.AccuracyName} | final zeros | final share under threshold | sharpest rise of zeros (window) | sharpest rise of small weights (window) | final probe essential sparsity |");
        md.AppendLine("| --- | --- | --- | --- | --- | --- | --- |");
        foreach (var (f, t, _) in tables)
        {
            var steps = t.Column("step");
            var zeros = t.Column("zeros");
            var small = t.Column(smallColumn);
            var total = t.Column("total");
            string Rise((double Start, double End, double RatePerStep)? r) =>
                r is { } w && w.RatePerStep > 0 ? $"steps {w.Start:0}-{w.End:0} (+{w.RatePerStep:0.##}/step)" : "no rise";
            md.AppendLine($"| {f:0.###} | {t.Column("dense_accuracy").Last(v => !double.IsNaN(v)).ToString(text.AccuracyFormat, CultureInfo.InvariantCulture)} | {zeros[^1]:0} | {small[^1] / total[^1]:P2} | " +
                          $"{Rise(ProbeTable.SharpestRise(steps, zeros))} | {Rise(ProbeTable.SharpestRise(steps, small))} | {t.Column("probe_essential_sparsity").Last(v => !double.IsNaN(v)):P0} |");
        }
        md.AppendLine();
        AppendChangepoints(md, tables.Select(t => (t.Fraction, t.Table)).ToList(), new[] { "zeros", smallColumn }.Concat(shareColumns).ToList());
        md.AppendLine("![zeros](zeros_vs_step.png)").AppendLine();
        md.AppendLine("![small](small_magnitude_vs_step.png)").AppendLine();
        md.AppendLine("![essential](probe_essential_sparsity_vs_step.png)").AppendLine();
        md.AppendLine($"![accuracy]({text.AccuracyPng})").AppendLine();
        foreach (string column in shareColumns) md.AppendLine($"![{column}](share_{column}_vs_step.png)").AppendLine();
        if (thresholdColumns.Count > 0) md.AppendLine("![thresholds](global_thresholds_vs_step.png)").AppendLine();
        md.AppendLine("Data: `abrupt.csv` (every probe of every run), and per run `runs/fraction-*/probe.csv`, `probe_layers.csv` (per layer and matrix), `probe.jsonl`, `train_log.csv`.").AppendLine();
        var timed = tables.Where(t => t.Summary != null).ToList();
        if (timed.Count > 0)
            md.AppendLine($"Probe cost: {string.Join("; ", timed.Select(t => $"{t.Fraction:0.###}: {100 * t.Summary!.ProbeSeconds / Math.Max(t.Summary.TrainSeconds + t.Summary.ProbeSeconds, 1e-9):F1}% of run time"))}.").AppendLine();
        md.AppendLine("Rerun (finished runs are reused, interrupted ones resume):").AppendLine();
        md.AppendLine("```sh").AppendLine(rerun).AppendLine("```");
        string summary = Path.Combine(folder, "summary.md");
        File.WriteAllText(summary, md.ToString());
        return summary;
    }
}
