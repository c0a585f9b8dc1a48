using System.Globalization;
using System.Text;
using NativeSparsity.Engine.Backends.Cpu;
using NativeSparsity.Engine.Sparsity;
using NativeSparsity.Experiments.Reporting;
using NativeSparsity.Experiments.Training;
using NativeSparsity.Experiments.Vision;
using NativeSparsity.Models.Bert;
using NativeSparsity.Models.Vision;
using NativeSparsity.Models.Vit;
using NativeSparsity.Engine.IO;

namespace NativeSparsity.Experiments.Studies;

/// <summary>What the supervised side of the study trains on.</summary>
public sealed record SslVsSlOptions
{
    /// <summary>WordNet task of the supervised run (supersense: gloss → lexicographer file, 45 classes).</summary>
    public string Task { get; init; } = "supersense";

    /// <summary>Cap on examples per split (0 = all).</summary>
    public int MaxExamplesPerSplit { get; init; }

    /// <summary>Dev batches per supervised probe evaluation (one sequence is one prediction, so more than MLM needs).</summary>
    public int SupervisedProbeBatches { get; init; } = 16;
}

/// <summary>
/// Self-supervised vs supervised pre-training (paper, claim 4): the same architecture, seed and
/// optimizer settings trained for the same steps with MLM and with a WordNet classification task,
/// both probed on the same schedule. Draws zero and small-magnitude shares and probe essential
/// sparsity against step, and the per-layer |w| histograms of both final models. Finished runs are
/// reused; unfinished ones resume.
/// </summary>
public static class SslVsSlStudy
{
    private const string SslName = "ssl", SlName = "sl";

    public static string Run(PretrainRunOptions template, SslVsSlOptions sl, string reportFolder, string rerunCommand)
    {
        using var folderLock = FolderLock.Acquire(reportFolder, "study ssl-vs-sl");
        string sslFolder = Path.Combine(reportFolder, "runs", SslName), slFolder = Path.Combine(reportFolder, "runs", SlName);
        PretrainRunSummary? sslSummary = null, slSummary = null;
        if (IsFinished(sslFolder, template.Train.Steps)) Console.WriteLine($"self-supervised: finished run found in {sslFolder}, reused");
        else
        {
            Console.WriteLine($"== self-supervised (MLM): pre-training into {sslFolder}");
            sslSummary = PretrainRun.Run(template with { OutputFolder = sslFolder, Resume = true });
        }
        if (IsFinished(slFolder, template.Train.Steps)) Console.WriteLine($"supervised: finished run found in {slFolder}, reused");
        else
        {
            Console.WriteLine($"== supervised ({sl.Task}): pre-training into {slFolder}");
            var slRun = template with
            {
                OutputFolder = slFolder, Resume = true,
                Probe = template.Probe with { EvalBatches = sl.SupervisedProbeBatches },
            };
            slSummary = SupervisedRun.Run(new SupervisedRunOptions { Run = slRun, Task = sl.Task, MaxExamplesPerSplit = sl.MaxExamplesPerSplit });
        }
        return WriteReport(BertText(template, sl), (sslFolder, sslSummary), (slFolder, slSummary), reportFolder, rerunCommand);
    }

    /// <summary>What the report says: run labels, the settings paragraphs, the accuracy axis, and lines added after the comparison.</summary>
    /// <param name="Intro">Markdown paragraphs after the title (settings of both runs and of the probe).</param>
    /// <param name="AccuracyAxis">Y label of the dense accuracy chart.</param>
    /// <param name="AccuracyNote">Paragraph on how the two probe accuracies compare.</param>
    /// <param name="FinalMetrics">Markdown lines on each run's final held-out metric (may be empty).</param>
    public sealed record ReportText(string SslLabel, string SlLabel, string Intro, string AccuracyAxis, string AccuracyNote, IReadOnlyList<string> FinalMetrics);

    /// <summary>
    /// The study for a ViT on Fashion-MNIST (or on <paramref name="data"/>): <paramref name="template"/> trained
    /// with masked-patch prediction (SSL) and with supervised classification (SL), same steps, seed and optimizer;
    /// the report adds each final model's metric on the whole validation split and the pixel baseline's accuracy.
    /// </summary>
    public static string RunVit(VitPretrainRunOptions template, string reportFolder, string rerunCommand,
                                (LabeledImages Train, LabeledImages Validation)? data = null, PixelBaselineOptions? baseline = null)
    {
        Directory.CreateDirectory(reportFolder);
        var loaded = data ?? VitPretrainRun.LoadFashionMnist(template.DataFolder, Console.WriteLine);
        string sslFolder = Path.Combine(reportFolder, "runs", SslName), slFolder = Path.Combine(reportFolder, "runs", SlName);
        var sslOptions = template with { OutputFolder = sslFolder, Objective = VitObjective.MaskedPatches, Resume = true };
        var slOptions = template with { OutputFolder = slFolder, Objective = VitObjective.Supervised, Resume = true };
        PretrainRunSummary? sslSummary = null, slSummary = null;
        if (IsFinished(sslFolder, template.Train.Steps)) Console.WriteLine($"self-supervised: finished run found in {sslFolder}, reused");
        else
        {
            Console.WriteLine($"== self-supervised (masked patches): pre-training into {sslFolder}");
            sslSummary = VitPretrainRun.Run(sslOptions, loaded);
        }
        if (IsFinished(slFolder, template.Train.Steps)) Console.WriteLine($"supervised: finished run found in {slFolder}, reused");
        else
        {
            Console.WriteLine($"== supervised (10-class classification): pre-training into {slFolder}");
            slSummary = VitPretrainRun.Run(slOptions, loaded);
        }
        Console.WriteLine("evaluating both final models on the whole validation split and training the pixel baseline");
        var sslEval = VitPretrainRun.EvaluateCheckpoint(LastCheckpointOf(sslFolder), sslOptions, loaded.Validation);
        var slEval = VitPretrainRun.EvaluateCheckpoint(LastCheckpointOf(slFolder), slOptions, loaded.Validation);
        var trainImages = template.DataFraction < 1
            ? loaded.Train.Subset(VitPretrainRun.FractionIndices(loaded.Train, template.DataFraction, template.Train.Seed)) : loaded.Train;
        var normalization = PixelNormalization.FromImages(loaded.Train);
        var pixels = PixelBaseline.Train(normalization.Normalize(trainImages), trainImages.Labels, trainImages.ClassCount,
                                         baseline ?? new PixelBaselineOptions(Seed: template.Train.Seed));
        double baselineAccuracy = pixels.Accuracy(normalization.Normalize(loaded.Validation), loaded.Validation.Labels);
        double majority = PixelBaseline.MajorityAccuracy(trainImages.Labels, loaded.Validation.Labels, trainImages.ClassCount);
        var finals = new List<string>
        {
            $"- self-supervised (masked patches): validation masked-pixel MSE {sslEval.Loss:F4}, R² {sslEval.Accuracy:P1} ({sslEval.Predictions:N0} hidden patches of {loaded.Validation.Count:N0} images, fixed masks);",
            $"- supervised: validation top-1 accuracy **{slEval.Accuracy:P2}** (cross-entropy {slEval.Loss:F3}, {slEval.Predictions:N0} images);",
            $"- baselines on the same validation images: logistic regression on the pixels (trained on the same {trainImages.Count:N0} training images) " +
            $"**{baselineAccuracy:P2}**, majority class {majority:P2}.",
        };
        return WriteReport(VitText(template, trainImages.Count, loaded.Validation.Count, finals),
                           (sslFolder, sslSummary), (slFolder, slSummary), reportFolder, rerunCommand);
    }

    private static string LastCheckpointOf(string runFolder) =>
        PretrainRun.LatestCheckpoint(Path.Combine(runFolder, PretrainRun.CheckpointsFolder))
        ?? throw new FileNotFoundException($"{runFolder}: no checkpoint");

    private static ReportText BertText(PretrainRunOptions o, SslVsSlOptions sl)
    {
        var md = new StringBuilder();
        md.AppendLine($"Same architecture ({o.Preset}{(o.Layers is int l ? $", {l} layers" : "")}{(o.Hidden is int h ? $", hidden {h}" : "")}), " +
                      $"same seed ({o.Train.Seed}), same initial encoder weights, same optimizer (AdamW lr {o.Train.LearningRate:g3}, warm-up {o.Train.WarmupSteps}, " +
                      $"weight decay {o.Train.WeightDecay:g3}, clip {o.Train.MaxGradNorm:g3}), {o.Train.Steps} steps of {o.Train.BatchSize}x{o.Train.SequenceLength} tokens each:").AppendLine();
        md.AppendLine($"- self-supervised: MLM ({o.Train.MaskProbability:P0} of tokens) on {(o.Data is { Count: > 0 } d ? string.Join(", ", d) : "the embedded WordNet corpus")} (data fraction {o.DataFraction:0.###});");
        md.AppendLine($"- supervised: WordNet `{sl.Task}` classification (gloss → lexicographer file) on the pooled [CLS]{(sl.MaxExamplesPerSplit > 0 ? $", at most {sl.MaxExamplesPerSplit} examples per split" : "")}, " +
                      "text tokenized with the same compact BPE vocabulary.").AppendLine();
        md.AppendLine($"Probe every {o.Probe.Every} steps (OMP every {(o.Probe.OmpEvery > 0 ? o.Probe.OmpEvery : o.Probe.Every)}): sparsity statistics of the prunable encoder matrices, " +
                      $"then OMP at {string.Join(", ", o.Probe.Levels.Select(x => $"{x * 100:0}%"))} without fine-tuning, measured on each model's own held-out task " +
                      $"(MLM: {o.Probe.EvalBatches} held-out batches, masked-token accuracy; supervised: {sl.SupervisedProbeBatches} dev batches, sequence accuracy). " +
                      $"Probe essential sparsity = largest level whose accuracy is within {o.Probe.Epsilon * 100:0.##} percentage point(s) of the unpruned accuracy.").AppendLine();
        return new ReportText("self-supervised (MLM)", $"supervised ({sl.Task})", md.ToString(), "accuracy (MLM: masked tokens; supervised: dev sequences)",
            "The two probe accuracies measure different tasks (MLM token prediction vs sequence classification), so compare the " +
            "essential sparsities, each relative to its own unpruned model, not the accuracies themselves.", Array.Empty<string>());
    }

    private static ReportText VitText(VitPretrainRunOptions o, int trainImages, int validationImages, IReadOnlyList<string> finals)
    {
        var md = new StringBuilder();
        md.AppendLine($"Same ViT ({o.Preset}, patch {o.PatchSize}), same seed ({o.Train.Seed}, which also draws the data order, augmentation and initial weights), " +
                      $"same optimizer (AdamW lr {o.Train.LearningRate:g3}, warm-up {o.Train.WarmupSteps}, weight decay {o.Train.WeightDecay:g3}, clip {o.Train.MaxGradNorm:g3}), " +
                      $"{o.Train.Steps} steps of {o.Train.BatchSize} Fashion-MNIST images (random crop with padding 2 and horizontal flip) from {trainImages:N0} training images:").AppendLine();
        md.AppendLine($"- self-supervised: masked patch prediction (SimMIM-style: {o.MaskRatio:P0} of the patches replaced by a mask token, MSE on their normalised pixels);");
        md.AppendLine("- supervised: 10-class classification from the [CLS] token (cross-entropy).").AppendLine();
        md.AppendLine($"Probe every {o.Probe.Every} steps (OMP every {(o.Probe.OmpEvery > 0 ? o.Probe.OmpEvery : o.Probe.Every)}): sparsity statistics of the prunable encoder matrices, " +
                      $"then OMP at {string.Join(", ", o.Probe.Levels.Select(x => $"{x * 100:0}%"))} without fine-tuning, measured on each model's own task over " +
                      $"{o.Probe.EvalBatches} batches of the {validationImages:N0} validation images (no augmentation): supervised top-1 accuracy; self-supervised R² of the hidden pixels " +
                      "(1 - MSE / variance of the targets, fixed masks). " +
                      $"Probe essential sparsity = largest level whose metric is within {o.Probe.Epsilon * 100:0.##} point(s) of the unpruned model's " +
                      "(for the self-supervised model: points of variance explained).").AppendLine();
        return new ReportText("self-supervised (masked patches)", "supervised (classification)", md.ToString(),
            "accuracy (supervised: top-1; self-supervised: masked-pixel R²)",
            "The two probe metrics measure different tasks (pixel regression R² vs classification accuracy), so compare the essential sparsities, " +
            "each relative to its own unpruned model, not the metrics themselves.", finals);
    }

    public static bool IsFinished(string folder, long steps)
    {
        string? last = PretrainRun.LatestCheckpoint(Path.Combine(folder, PretrainRun.CheckpointsFolder));
        return last != null && last.EndsWith($"step-{steps:D7}", StringComparison.Ordinal) && File.Exists(Path.Combine(folder, "probe.csv"));
    }

    /// <summary>Per-layer |w| histograms (matrix histograms summed; same edges) of a run's final prunable weights.</summary>
    public static IReadOnlyList<MagnitudeHistogram> FinalLayerHistograms(string runFolder)
    {
        string last = PretrainRun.LatestCheckpoint(Path.Combine(runFolder, PretrainRun.CheckpointsFolder))
                      ?? throw new FileNotFoundException($"{runFolder}: no checkpoint to read the final weights from");
        using var backend = new CpuBackend();
        // Only the encoder matters here; the heads of either objective are skipped when loading.
        IDisposable parameters;
        PrunableSet set;
        if (IsVitCheckpoint(last))
        {
            var (vit, _) = VitCheckpoint.Load(last, backend, new VitHeads());
            (parameters, set) = (vit, vit.PrunableSet());
        }
        else
        {
            var (bert, _) = BertCheckpoint.Load(last, backend, new BertHeads(MaskedLm: false, NextSentence: false, Pooler: false));
            (parameters, set) = (bert, bert.PrunableSet());
        }
        using (parameters)
        {
            var stats = SparsityStatistics.Compute(set, new SparsityStatisticsOptions { SweepSparsities = null });
            return stats.Histograms.GroupBy(h => h.Layer).OrderBy(g => g.Key).Select(g =>
            {
                var first = g.First();
                var counts = new long[first.Counts.Length];
                foreach (var h in g) for (int b = 0; b < counts.Length; b++) counts[b] += h.Counts[b];
                return new MagnitudeHistogram($"layer.{g.Key}", g.Key, first.Edges, counts, g.Sum(h => h.Zeros), g.Sum(h => h.Underflow), g.Sum(h => h.Overflow));
            }).ToList();
        }
    }

    /// <summary>Whether a checkpoint folder holds a ViT (config.json's model_type is "vit").</summary>
    public static bool IsVitCheckpoint(string folder)
    {
        string path = Path.Combine(folder, "config.json");
        return File.Exists(path) && System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(path))?["model_type"]?.GetValue<string>() == "vit";
    }

    private static string WriteReport(ReportText text, (string Folder, PretrainRunSummary? Summary) ssl,
                                      (string Folder, PretrainRunSummary? Summary) sup, string folder, string rerun)
    {
        string sslLabel = text.SslLabel, slLabel = text.SlLabel;
        var runs = new[]
        {
            (Name: SslName, Label: sslLabel, Table: new ProbeTable(Path.Combine(ssl.Folder, "probe.csv")), ssl.Summary, ssl.Folder),
            (Name: SlName, Label: slLabel, Table: new ProbeTable(Path.Combine(sup.Folder, "probe.csv")), sup.Summary, sup.Folder),
        };
        var header = runs[0].Table.Header;
        string smallColumn = header.FirstOrDefault(h => h.StartsWith("abs_below_1e-3", StringComparison.Ordinal))
                             ?? header.First(h => h.StartsWith("abs_below", StringComparison.Ordinal));
        string? relColumn = header.FirstOrDefault(h => h.StartsWith("rel_std_below_", StringComparison.Ordinal));
        string Pretty(string column) => column.StartsWith("abs_below_", StringComparison.Ordinal) ? $"|w| < {column["abs_below_".Length..]}"
            : column.StartsWith("rel_std_below_", StringComparison.Ordinal) ? $"|w| < {column["rel_std_below_".Length..]} std" : column;

        Series S(string label, ProbeTable t, string column, bool share)
        {
            var x = t.Column("step");
            var y = t.Column(column);
            if (share) { var total = t.Column("total"); y = y.Select((v, i) => v / total[i]).ToArray(); }
            var keep = y.Select((v, i) => (v, i)).Where(p => !double.IsNaN(p.v)).Select(p => p.i).ToArray();
            return new Series(label, keep.Select(i => x[i]).ToArray(), keep.Select(i => y[i]).ToArray());
        }
        Plots.Lines(Path.Combine(folder, "zeros_vs_step.png"), "Exact zeros in the prunable weights: self-supervised vs supervised", "step",
            "share of prunable weights that are exactly 0", runs.Select(r => S(r.Label, r.Table, "zeros", true)), percentY: true);
        Plots.Lines(Path.Combine(folder, "small_magnitude_vs_step.png"), $"Share of prunable weights with {Pretty(smallColumn)}", "step",
            "share of prunable weights", runs.Select(r => S(r.Label, r.Table, smallColumn, true)), percentY: true);
        if (relColumn != null)
            Plots.Lines(Path.Combine(folder, "relative_small_vs_step.png"), $"Share of prunable weights with {Pretty(relColumn)} of their matrix", "step",
                "share of prunable weights", runs.Select(r => S(r.Label, r.Table, relColumn, true)), percentY: true);
        Plots.Lines(Path.Combine(folder, "probe_essential_sparsity_vs_step.png"),
            "Probe essential sparsity (OMP without fine-tuning, own-task accuracy within epsilon)", "step", "sparsity",
            runs.Select(r => S(r.Label, r.Table, "probe_essential_sparsity", false)), percentY: true);
        Plots.Lines(Path.Combine(folder, "accuracy_vs_step.png"), "Held-out accuracy on the model's own task (dense)", "step",
            text.AccuracyAxis, runs.Select(r => S(r.Label, r.Table, "dense_accuracy", false)), percentY: true);

        // Combined probe CSV (run as first column; columns by the MLM run's header).
        var csv = new StringBuilder("run," + string.Join(",", header) + "\n");
        foreach (var r in runs)
        {
            var columns = header.Select(h => r.Table.Has(h) ? r.Table.Column(h) : new double[r.Table.Count]).ToArray();
            for (int i = 0; i < r.Table.Count; i++)
                csv.Append(r.Name).Append(',').AppendLine(string.Join(",", columns.Select(c => double.IsNaN(c[i]) ? "" : c[i].ToString("R", CultureInfo.InvariantCulture))));
        }
        File.WriteAllText(Path.Combine(folder, "ssl_vs_sl.csv"), csv.ToString());

        // Final layer-wise |w| histograms of both models.
        var hist = runs.Select(r => (r.Name, r.Label, Layers: FinalLayerHistograms(r.Folder))).ToList();
        var histCsv = new StringBuilder("run,layer,low,high,count,share\n");
        var histPngs = new List<string>();
        foreach (var layer in hist[0].Layers.Select(h => h.Layer))
        {
            var series = new List<Series>();
            var perRun = hist.Select(h => (h.Name, h.Label, H: h.Layers.First(x => x.Layer == layer))).ToList();
            // Draw the bins from the first to the last non-empty one of either model.
            int lo = perRun.Min(p => Array.FindIndex(p.H.Counts, c => c > 0) is int i && i >= 0 ? i : int.MaxValue);
            int hi = perRun.Max(p => Array.FindLastIndex(p.H.Counts, c => c > 0));
            foreach (var (name, label, h) in perRun)
            {
                long total = h.Counts.Sum() + h.Zeros + h.Underflow + h.Overflow;
                string Row(string low, string high, long count) =>
                    $"{name},{layer},{low},{high},{count},{((double)count / total).ToString("R", CultureInfo.InvariantCulture)}";
                histCsv.AppendLine(Row("0", "0", h.Zeros));
                histCsv.AppendLine(Row("0", Num(h.Edges[0]), h.Underflow));
                for (int b = 0; b < h.Counts.Length; b++) histCsv.AppendLine(Row(Num(h.Edges[b]), Num(h.Edges[b + 1]), h.Counts[b]));
                histCsv.AppendLine(Row(Num(h.Edges[^1]), "inf", h.Overflow));
                if (hi < lo) continue;
                var bins = Enumerable.Range(lo, hi - lo + 1).ToArray();
                series.Add(new Series(label, bins.Select(b => 0.5 * (Math.Log10(h.Edges[b]) + Math.Log10(h.Edges[b + 1]))).ToArray(),
                    bins.Select(b => (double)h.Counts[b] / total).ToArray()));
            }
            string png = $"histogram_layer_{layer}.png";
            Plots.Lines(Path.Combine(folder, png), $"Final |w| distribution, encoder layer {layer} (log-spaced bins, 10 per decade)",
                "log10 |w| (bin centre)", "share of the layer's prunable weights", series, percentY: true);
            histPngs.Add(png);
        }
        File.WriteAllText(Path.Combine(folder, "histograms.csv"), histCsv.ToString());

        File.WriteAllText(Path.Combine(folder, "summary.md"), Summary(text, runs.Select(r => (r.Label, r.Table, r.Summary)).ToList(),
            smallColumn, relColumn, histPngs, rerun));
        return Path.Combine(folder, "summary.md");
    }

    private static string Num(double x) => x.ToString("R", CultureInfo.InvariantCulture);

    private static string Summary(ReportText text, List<(string Label, ProbeTable Table, PretrainRunSummary? Summary)> runs,
                                  string smallColumn, string? relColumn, List<string> histPngs, string rerun)
    {
        var md = new StringBuilder();
        md.AppendLine("# Self-supervised vs supervised pre-training: how sparse do they become?").AppendLine();
        md.Append(text.Intro);
        if (!text.Intro.EndsWith("\n\n", StringComparison.Ordinal)) md.AppendLine();

        md.AppendLine("## Final weights").AppendLine();
        string[] countColumns = runs[0].Table.Header.Where(c => c == "zeros" || c.StartsWith("abs_below_", StringComparison.Ordinal) || c.StartsWith("rel_std_below_", StringComparison.Ordinal)).ToArray();
        string ColName(string c) => c == "zeros" ? "exact zeros" : c.StartsWith("abs_below_", StringComparison.Ordinal) ? $"|w| < {c["abs_below_".Length..]}" : $"|w| < {c["rel_std_below_".Length..]} std";
        // A bare '|' would split a Markdown table cell.
        md.AppendLine("| run | dense accuracy (own task) | prunable weights | " + string.Join(" | ", countColumns.Select(c => ColName(c).Replace("|", "\\|"))) + " | probe essential sparsity |");
        md.AppendLine("| --- | --- | --- | " + string.Join(" | ", countColumns.Select(_ => "---")) + " | --- |");
        foreach (var (label, t, _) in runs)
        {
            double total = t.Column("total")[^1];
            md.AppendLine($"| {label} | {Last(t, "dense_accuracy"):P1} | {total:N0} | " +
                          string.Join(" | ", countColumns.Select(c => $"{t.Column(c)[^1]:N0} ({t.Column(c)[^1] / total:P3})")) +
                          $" | {Last(t, "probe_essential_sparsity"):P0} |");
        }
        md.AppendLine();
        md.AppendLine("Difference, self-supervised minus supervised (the paper reports 14.37% more zeros for DINO than for a supervised ViT):").AppendLine();
        foreach (var c in countColumns)
        {
            double a = runs[0].Table.Column(c)[^1], b = runs[1].Table.Column(c)[^1];
            string relative = b > 0 ? $"{(a - b) / b:+0.##%;-0.##%;0%} relative to supervised" : a > 0 ? "supervised has none" : "neither has any";
            md.AppendLine($"- {ColName(c)}: {a - b:+#,0;-#,0;0} weights ({relative})");
        }
        double ea = Last(runs[0].Table, "probe_essential_sparsity"), eb = Last(runs[1].Table, "probe_essential_sparsity");
        md.AppendLine($"- probe essential sparsity: {(ea - eb) * 100:+0;-0;0} points ({ea:P0} vs {eb:P0})").AppendLine();
        md.AppendLine(text.AccuracyNote).AppendLine();
        if (text.FinalMetrics.Count > 0)
        {
            md.AppendLine("## Final held-out metrics").AppendLine();
            foreach (var line in text.FinalMetrics) md.AppendLine(line);
            md.AppendLine();
        }

        md.AppendLine("## Charts").AppendLine();
        md.AppendLine("![zeros](zeros_vs_step.png)").AppendLine();
        md.AppendLine("![small](small_magnitude_vs_step.png)").AppendLine();
        if (relColumn != null) md.AppendLine("![relative](relative_small_vs_step.png)").AppendLine();
        md.AppendLine("![essential](probe_essential_sparsity_vs_step.png)").AppendLine();
        md.AppendLine("![accuracy](accuracy_vs_step.png)").AppendLine();
        foreach (var png in histPngs) md.AppendLine($"![{Path.GetFileNameWithoutExtension(png)}]({png})").AppendLine();
        md.AppendLine("Data: `ssl_vs_sl.csv` (every probe of both runs), `histograms.csv` (final per-layer |w| histograms; zeros as [0,0], " +
                      "non-zero |w| below the first edge as [0, edge)), and per run `runs/ssl|sl/probe.csv`, `probe_layers.csv`, `probe.jsonl`, `train_log.csv`.").AppendLine();
        var timed = runs.Where(r => r.Summary != null).ToList();
        if (timed.Count > 0)
            md.AppendLine($"Run time: {string.Join("; ", timed.Select(r => $"{r.Label}: training {r.Summary!.TrainSeconds:F0} s, probing {r.Summary.ProbeSeconds:F0} s " +
                          $"({100 * r.Summary.ProbeSeconds / Math.Max(r.Summary.TrainSeconds + r.Summary.ProbeSeconds, 1e-9):F1}%)"))}.").AppendLine();
        md.AppendLine("Rerun (finished runs are reused, interrupted ones resume):").AppendLine();
        md.AppendLine("```sh").AppendLine(rerun).AppendLine("```");
        return md.ToString();
    }

    private static double Last(ProbeTable t, string column) => t.Column(column).LastOrDefault(v => !double.IsNaN(v), double.NaN);
}
