using System.Globalization;
using System.Text;
using NativeSparsity.Engine.Backends.Cpu;
using NativeSparsity.Engine.Sparsity;
using NativeSparsity.Experiments.Reporting;

namespace NativeSparsity.Experiments.Studies;

/// <summary>The lottery study's report: LTH minus OMP against sparsity, and mask-similarity heatmaps per target level.</summary>
internal static class LotteryReport
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;
    private static string Pct(double v) => (100 * v).ToString("0.##", Inv) + "%";

    public static string Write(EssentialStudyOptions o, double rate, string[] tasks, double[] targets, double[] rounds, PrunableSet set, CpuBackend host,
                               List<EssentialCell> lthCells, List<EssentialCell> ompCells, MaskSet[] ompMasks, string checkpoint, string backend)
    {
        string folder = o.ReportFolder;
        double Omp(string task, double level) =>
            ompCells.Where(c => c.Task == task && c.Kind == (level == 0 ? EssentialStudy.Dense : EssentialStudy.Omp) && c.Sparsity == level)
                    .Select(c => c.Value).DefaultIfEmpty(double.NaN).Average();
        double Lth(string task, double level) =>
            lthCells.Where(c => c.Task == task && c.Sparsity == level).Select(c => c.Value).DefaultIfEmpty(double.NaN).First();

        var csv = new StringBuilder("task,round,sparsity,lth,omp_mean,lth_minus_omp_points,pruned\n");
        foreach (var t in tasks)
            foreach (var (c, i) in lthCells.Where(c => c.Task == t).OrderBy(c => c.Sparsity).Select((c, i) => (c, i)))
            {
                double omp = targets.Contains(c.Sparsity) || c.Sparsity == 0 ? Omp(t, c.Sparsity) : double.NaN;
                csv.Append(string.Join(",", t, i.ToString(Inv), c.Sparsity.ToString("R", Inv), c.Value.ToString("R", Inv), omp.ToString("R", Inv),
                    (100 * (c.Value - omp)).ToString("R", Inv), c.Pruned.ToString(Inv))).Append('\n');
            }
        File.WriteAllText(Path.Combine(folder, "lottery.csv"), csv.ToString());

        Plots.Lines(Path.Combine(folder, "lth_minus_omp.png"), "Lottery ticket (IMP with rewinding) minus one-shot OMP", "sparsity", "LTH - OMP (points)",
            tasks.Select(t => new Series(t, targets, targets.Select(l => 100 * (Lth(t, l) - Omp(t, l))).ToArray())), percentX: true);

        // Similarity at every target: OMP's mask and each task's ticket.
        var labels = new[] { "OMP" }.Concat(tasks.Select(t => $"LTH {t}")).ToArray();
        var simCsv = new StringBuilder("sparsity,mask_a,mask_b,cosine,jaccard,chance_cosine,chance_jaccard\n");
        var md = new StringBuilder();
        md.AppendLine("# Lottery tickets vs one-shot magnitude pruning").AppendLine();
        md.AppendLine($"Checkpoint `{checkpoint}`, backend {backend}. Per task: fine-tune, prune {Pct(rate)} of the remaining encoder weights globally by the fine-tuned |w| " +
                      "(only among weights still unpruned), rewind the survivors to the pre-trained values, fine-tune again; the rounds reach " +
                      $"{string.Join(", ", rounds.Select(r => Pct(r)))}. OMP prunes the pre-trained weights once at each target. " +
                      $"Fine-tuning: {o.Train.Epochs} epoch(s), lr {o.Train.LearningRate:G3}, batch {o.Train.BatchSize}, LTH seed 1, OMP mean over {o.Seeds} seed(s).").AppendLine();
        md.AppendLine("Main metric, LTH / OMP (LTH - OMP in points):").AppendLine();
        md.AppendLine("| task | dense | " + string.Join(" | ", targets.Select(l => Pct(l))) + " |");
        md.AppendLine("| --- | --- |" + string.Concat(targets.Select(_ => " --- |")));
        foreach (var t in tasks)
            md.AppendLine($"| {t} | {100 * Lth(t, 0):F1} | " + string.Join(" | ", targets.Select(l =>
                $"{100 * Lth(t, l):F1} / {100 * Omp(t, l):F1} ({100 * (Lth(t, l) - Omp(t, l)):+0.0;-0.0})")) + " |");
        md.AppendLine();
        md.AppendLine("![LTH minus OMP](lth_minus_omp.png)").AppendLine();
        md.AppendLine("## Mask similarity").AppendLine();
        md.AppendLine("Cosine and Jaccard of the keep masks; two random masks of the same density d already reach cosine d and Jaccard d / (2 - d) (chance), " +
                      "so only the excess over chance says the masks agree.").AppendLine();
        foreach (double level in targets)
        {
            var masks = new List<MaskSet> { ompMasks[Array.IndexOf(targets, level)] };
            try
            {
                foreach (var t in tasks) masks.Add(LotteryStudy.LoadMask(LotteryStudy.MaskPath(folder, t, level), set, host));
                int n = masks.Count;
                var cos = new double[n, n];
                var jac = new double[n, n];
                double chanceCos = double.NaN, chanceJac = double.NaN;
                for (int a = 0; a < n; a++)
                    for (int b = 0; b < n; b++)
                    {
                        var r = MaskSimilarity.Compare(masks[a], masks[b]);
                        cos[a, b] = r.Cosine;
                        jac[a, b] = r.Jaccard;
                        if (a != b)
                        {
                            chanceCos = r.ChanceCosine; chanceJac = r.ChanceJaccard;
                            if (a < b)
                                simCsv.Append(string.Join(",", level.ToString("R", Inv), labels[a], labels[b], r.Cosine.ToString("R", Inv), r.Jaccard.ToString("R", Inv),
                                    r.ChanceCosine.ToString("R", Inv), r.ChanceJaccard.ToString("R", Inv))).Append('\n');
                        }
                    }
                string tag = level.ToString("0.####", Inv);
                Plots.Heatmap(Path.Combine(folder, $"similarity_cosine_{tag}.png"), $"Keep-mask cosine at {Pct(level)} (chance {chanceCos:F3})", labels, cos, "cosine");
                Plots.Heatmap(Path.Combine(folder, $"similarity_jaccard_{tag}.png"), $"Keep-mask Jaccard at {Pct(level)} (chance {chanceJac:F3})", labels, jac, "Jaccard");
                md.AppendLine($"### {Pct(level)}").AppendLine();
                md.AppendLine($"Chance: cosine {chanceCos:F3}, Jaccard {chanceJac:F3}.").AppendLine();
                md.AppendLine("| cosine / Jaccard | " + string.Join(" | ", labels) + " |");
                md.AppendLine("| --- |" + string.Concat(labels.Select(_ => " --- |")));
                for (int a = 0; a < n; a++)
                    md.AppendLine($"| {labels[a]} | " + string.Join(" | ", Enumerable.Range(0, n).Select(b => $"{cos[a, b]:F3} / {jac[a, b]:F3}")) + " |");
                md.AppendLine();
                md.AppendLine($"![cosine](similarity_cosine_{tag}.png) ![Jaccard](similarity_jaccard_{tag}.png)").AppendLine();
            }
            finally { foreach (var m in masks.Skip(1)) m.Keep.Storage.Dispose(); }
        }
        File.WriteAllText(Path.Combine(folder, "mask_similarity.csv"), simCsv.ToString());
        md.AppendLine("Data: `lottery.csv` (every round, with OMP at the targets), `mask_similarity.csv`, `masks/TASK/lth-LEVEL.safetensors` " +
                      "(the tickets, usable with `nsparse finetune --mask`), `cells/` (one JSON per finished cell).").AppendLine();
        md.AppendLine("Rerun (finished rounds and cells are skipped):").AppendLine();
        md.AppendLine("```sh").AppendLine(o.RerunCommand).AppendLine("```");
        string path = Path.Combine(folder, "lottery_summary.md");
        File.WriteAllText(path, md.ToString());
        return path;
    }
}
