using System.Globalization;
using System.Text;
using NativeSparsity.Engine.Backends.Cpu;
using NativeSparsity.Engine.Sparsity;
using NativeSparsity.Experiments.Reporting;
using NativeSparsity.Models.Bert;
using NativeSparsity.Engine.IO;

namespace NativeSparsity.Experiments.Studies;

/// <summary>An N:M pattern: in every M consecutive input weights of a row, N kept.</summary>
public readonly record struct NMPattern(int N, int M)
{
    public double Sparsity => 1.0 - (double)N / M;
    /// <summary>The cell kind: "nm2of4" (a file-name-safe spelling of 2:4).</summary>
    public string Kind => string.Create(CultureInfo.InvariantCulture, $"nm{N}of{M}");
    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{N}:{M}");

    public static NMPattern Parse(string text)
    {
        var parts = text.Split(':');
        if (parts.Length != 2 || !int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out int n)
            || !int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out int m) || m < 2 || n < 1 || n >= m)
            throw new ArgumentException($"--patterns: '{text}' is not an N:M pattern with 1 <= N < M (e.g. 2:4)");
        return new NMPattern(n, m);
    }

    public static readonly NMPattern[] Defaults = { new(1, 4), new(2, 4), new(2, 8), new(4, 8) };
}

/// <summary>
/// One-shot N:M pruning of the pre-trained weights (one task-agnostic mask per pattern, from
/// <see cref="Masks.NM"/>), each fine-tuned with the mask fixed exactly as the essential study
/// fine-tunes its OMP masks; reports per task and pattern the drop from dense (mean, std over
/// seeds). Cells share the essential study's layout and settings guard, so the same report folder
/// reuses its dense cells.
/// </summary>
public static class NMStudy
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;
    private static string Pct(double v) => (100 * v).ToString("0.##", Inv) + "%";

    public static string Run(EssentialStudyOptions o, IReadOnlyList<NMPattern> patterns)
    {
        Action<string> say = o.Quiet ? _ => { } : Console.WriteLine;
        using var folderLock = FolderLock.Acquire(o.ReportFolder, "study nm");
        if (o.Seeds < 1) throw new ArgumentException($"--seeds must be at least 1, got {o.Seeds}");
        var list = patterns.Distinct().ToArray();
        if (list.Length == 0) throw new ArgumentException("--patterns: give at least one N:M pattern");
        var (checkpoint, tokenizer, tasks) = EssentialStudy.Prepare(o, say);

        var host = new CpuBackend();
        using var pretrained = BertCheckpoint.Load(checkpoint, host, BertHeads.SequenceClassification(2)).Parameters;
        var set = pretrained.PrunableSet();
        var masks = list.Select(p => Masks.NM(set, p.N, p.M)).ToArray();
        say($"checkpoint {checkpoint}: {set.Count:N0} prunable weights; N:M masks {string.Join(", ", list)}");

        var cells = new List<(Tasks.ClassificationTask Task, string Kind, double Level, int SeedIndex)>();
        for (int s = 0; s < o.Seeds; s++)
            foreach (var task in tasks)
            {
                cells.Add((task, EssentialStudy.Dense, 0, s));
                foreach (var p in list) cells.Add((task, p.Kind, p.Sparsity, s));
            }
        var results = EssentialStudy.RunCells(o, checkpoint, tokenizer, cells, $"{tasks.Count} tasks x {o.Seeds} seeds x (dense + {list.Length} N:M)",
            say, out string backend, c => (c.Kind == EssentialStudy.Dense ? null : masks[Array.FindIndex(list, p => p.Kind == c.Kind)], false));

        var culture = CultureInfo.CurrentCulture;
        CultureInfo.CurrentCulture = Inv;
        try { return WriteReport(o, tasks.Select(t => t.Name).ToArray(), list, results, checkpoint, backend); }
        finally { CultureInfo.CurrentCulture = culture; }
    }

    private static string WriteReport(EssentialStudyOptions o, string[] tasks, NMPattern[] patterns, List<EssentialCell> cells, string checkpoint, string backend)
    {
        string folder = o.ReportFolder;
        var points = EssentialStudy.Aggregate(cells);
        var csv = new StringBuilder("task,pattern,sparsity,seeds,mean,std,mean_drop_points,std_points\n");
        EssentialPoint? Point(string task, string kind) => points.FirstOrDefault(p => p.Task == task && p.Kind == kind);
        foreach (var t in tasks)
            foreach (var (label, kind) in new[] { ("dense", EssentialStudy.Dense) }.Concat(patterns.Select(p => (p.ToString(), p.Kind))))
                if (Point(t, kind) is { } p)
                    csv.Append(string.Join(",", t, label, p.Sparsity.ToString("R", Inv), p.Seeds.ToString(Inv), p.Mean.ToString("R", Inv), p.Std.ToString("R", Inv),
                        p.MeanDropPoints.ToString("R", Inv), p.StdPoints.ToString("R", Inv))).Append('\n');
        File.WriteAllText(Path.Combine(folder, "nm_summary.csv"), csv.ToString());

        var series = tasks.Select(t => (t, patterns.Select(p => Point(t, p.Kind)?.MeanDropPoints ?? double.NaN).ToArray())).ToList();
        Plots.GroupedBars(Path.Combine(folder, "nm_drop.png"), "Drop from dense after N:M pruning (mean over seeds)", "drop (points)",
            patterns.Select(p => $"{p} ({Pct(p.Sparsity)})").ToArray(), series);

        var md = new StringBuilder();
        md.AppendLine("# N:M sparsity study").AppendLine();
        md.AppendLine($"Checkpoint `{checkpoint}`, backend {backend}. Each pattern keeps N of every M consecutive input weights of each encoder weight matrix, " +
                      "chosen by magnitude of the pre-trained weights (one task-agnostic mask per pattern); every task is fine-tuned with the mask fixed, " +
                      $"{o.Seeds} seed(s), {o.Train.Epochs} epoch(s), lr {o.Train.LearningRate:G3}, batch {o.Train.BatchSize}, max length {o.Train.MaxSequenceLength}.").AppendLine();
        md.AppendLine("Mean drop from dense (points) ± std over seeds:").AppendLine();
        md.AppendLine("| task | dense | " + string.Join(" | ", patterns.Select(p => $"{p} ({Pct(p.Sparsity)})")) + " |");
        md.AppendLine("| --- | --- |" + string.Concat(patterns.Select(_ => " --- |")));
        foreach (var t in tasks)
        {
            var dense = Point(t, EssentialStudy.Dense);
            md.AppendLine($"| {t} | {(dense == null ? "-" : $"{100 * dense.Mean:F1} ± {100 * dense.Std:F1}")} | " + string.Join(" | ", patterns.Select(p =>
                Point(t, p.Kind) is { } q ? $"{q.MeanDropPoints:F1} ± {q.StdPoints:F1}" : "-")) + " |");
        }
        md.AppendLine();
        md.AppendLine("![drop per pattern](nm_drop.png)").AppendLine();
        md.AppendLine("Data: `nm_summary.csv` (mean and spread per task and pattern), `cells/` (one JSON per finished cell, all metrics).").AppendLine();
        md.AppendLine("Rerun (finished cells are skipped):").AppendLine();
        md.AppendLine("```sh").AppendLine(o.RerunCommand).AppendLine("```");
        string path = Path.Combine(folder, "nm_summary.md");
        File.WriteAllText(path, md.ToString());
        return path;
    }
}
