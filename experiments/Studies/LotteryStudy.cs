using System.Globalization;
using System.Text;
using NativeSparsity.Engine.Backends;
using NativeSparsity.Engine.Backends.Cpu;
using NativeSparsity.Engine.Sparsity;
using NativeSparsity.Engine.Tensors;
using NativeSparsity.Experiments.Reporting;
using NativeSparsity.Experiments.Tasks;
using NativeSparsity.Models.Bert;
using NativeSparsity.Engine.IO;

namespace NativeSparsity.Experiments.Studies;

/// <summary>
/// Lottery tickets by iterative magnitude pruning with rewinding (the paper's comparison with
/// one-shot OMP): per task, fine-tune, prune a fraction of the remaining weights globally by the
/// fine-tuned |w|, rewind the survivors to the pre-trained values and fine-tune again, until the
/// largest target sparsity; every target level is also a round, so LTH and OMP meet there. Each
/// round is a cell (its metric as a JSON cell, the next round's mask as a safetensors file), so a
/// rerun resumes at the first unfinished round. Dense and OMP cells use the essential study's
/// layout: the same report folder and settings reuse them.
/// </summary>
public static class LotteryStudy
{
    public const string Lth = "lth";
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;
    private static string Pct(double v) => (100 * v).ToString("0.##", Inv) + "%";

    /// <summary>
    /// The sparsity after every round: each prunes <paramref name="rate"/> of what remains, clamped
    /// to the next target so every target is reached exactly (rounded to 4 decimals, as cells are named).
    /// </summary>
    public static double[] Schedule(IReadOnlyList<double> targets, double rate)
    {
        if (!(rate > 0 && rate < 1)) throw new ArgumentException($"--prune-rate must lie in (0, 1), got {rate}");
        var sorted = targets.Where(t => t > 0).Select(t => Math.Round(t, 4)).Distinct().OrderBy(t => t).ToArray();
        if (sorted.Length == 0) throw new ArgumentException("--levels: give at least one sparsity above 0");
        var rounds = new List<double>();
        double s = 0;
        foreach (double t in sorted)
            while (s < t)
            {
                double next = Math.Round(1 - (1 - s) * (1 - rate), 4);
                s = next <= s ? t : Math.Min(next, t);
                rounds.Add(s);
            }
        return rounds.ToArray();
    }

    /// <summary>Where the LTH mask of a task at a round's sparsity is stored.</summary>
    public static string MaskPath(string report, string task, double level) =>
        Path.Combine(report, "masks", EssentialStudy.Sanitize(task), string.Create(Inv, $"lth-{level:0.####}.safetensors"));

    public static string Run(EssentialStudyOptions o, double rate = 0.1)
    {
        Action<string> say = o.Quiet ? _ => { } : Console.WriteLine;
        using var folderLock = FolderLock.Acquire(o.ReportFolder, "study lottery");
        if (o.Seeds < 1) throw new ArgumentException($"--seeds must be at least 1, got {o.Seeds}");
        foreach (double l in o.Levels)
            if (!(l >= 0 && l < 1)) throw new ArgumentException($"--levels: {l} is not a sparsity in [0, 1)");
        var rounds = Schedule(o.Levels, rate);
        var targets = o.Levels.Where(t => t > 0).Select(t => Math.Round(t, 4)).Distinct().OrderBy(t => t).ToArray();
        var (checkpoint, tokenizer, tasks) = EssentialStudy.Prepare(o, say);

        var host = new CpuBackend();
        using var pretrained = BertCheckpoint.Load(checkpoint, host, BertHeads.SequenceClassification(2)).Parameters;
        var set = pretrained.PrunableSet();
        say($"checkpoint {checkpoint}: {set.Count:N0} prunable weights; LTH rounds at {string.Join(", ", rounds.Select(l => Pct(l)))}");

        var lthCells = new List<EssentialCell>();
        string backendName;
        using (var backend = BackendFactory.Create(o.Device, out backendName, o.Threads))
        {
            var progress = new ProgressLine((long)tasks.Count * (rounds.Length + 1), 0, unit: "round");
            int finished = 0;
            foreach (var task in tasks)
                lthCells.AddRange(RunTickets(o, checkpoint, backend, host, set, tokenizer, task, rounds, progress, ref finished, say));
            if (!o.Quiet) progress.Finish();
        }

        var ompMasks = Masks.GlobalMagnitudeSweep(set, targets);
        var cells = new List<(ClassificationTask Task, string Kind, double Level, int SeedIndex)>();
        for (int s = 0; s < o.Seeds; s++)
            foreach (var task in tasks)
            {
                cells.Add((task, EssentialStudy.Dense, 0, s));
                foreach (double l in targets) cells.Add((task, EssentialStudy.Omp, l, s));
            }
        var ompCells = EssentialStudy.RunCells(o, checkpoint, tokenizer, cells, $"{tasks.Count} tasks x {o.Seeds} seeds x (dense + {targets.Length} OMP)",
            say, out _, c => (c.Kind == EssentialStudy.Omp ? ompMasks[Array.IndexOf(targets, c.Level)] : null, false));

        var culture = CultureInfo.CurrentCulture;
        CultureInfo.CurrentCulture = Inv;
        try { return LotteryReport.Write(o, rate, tasks.Select(t => t.Name).ToArray(), targets, rounds, set, host, lthCells, ompCells, ompMasks, checkpoint, backendName); }
        finally
        {
            CultureInfo.CurrentCulture = culture;
            foreach (var m in ompMasks) m.Keep.Storage.Dispose();
        }
    }

    /// <summary>
    /// One task's chain: round 0 is the dense fine-tune, round k fine-tunes the pre-trained weights
    /// under mask k; after each round the next mask is written from its fine-tuned weights before
    /// the round's cell, so a finished cell always has its successor's mask.
    /// </summary>
    private static List<EssentialCell> RunTickets(EssentialStudyOptions o, string checkpoint, IBackend backend, CpuBackend host, PrunableSet set,
                                                  Models.Text.ITokenizer tokenizer, ClassificationTask task, double[] rounds, ProgressLine progress,
                                                  ref int finished, Action<string> say)
    {
        var result = new List<EssentialCell>();
        for (int k = 0; k <= rounds.Length; k++)
        {
            double level = k == 0 ? 0 : rounds[k - 1];
            string kind = k == 0 ? EssentialStudy.Dense : Lth;
            string? nextPath = k < rounds.Length ? MaskPath(o.ReportFolder, task.Name, rounds[k]) : null;
            var done = EssentialStudy.TryReadCell(EssentialStudy.CellPath(o.ReportFolder, task.Name, kind, level, 0));
            if (done != null && (nextPath == null || File.Exists(nextPath)))
            {
                result.Add(done);
                finished++;
                continue;
            }
            MaskSet? mask = k == 0 ? null : LoadMask(MaskPath(o.ReportFolder, task.Name, level), set, host);
            try
            {
                string label = $"{task.Name} LTH round {k}/{rounds.Length} ({Pct(level)})";
                var cell = EssentialStudy.RunCell(o, checkpoint, backend, tokenizer, task, kind, level, 0, mask, progress, finished, label,
                    tuned => { if (nextPath != null) WriteNextMask(tuned, mask, set, host, rounds[k], k + 1, nextPath); });
                result.Add(cell);
                finished++;
                if (!o.Quiet) progress.Update(finished, $"{label}: {cell.Metric} {cell.Value:F4}", force: true);
            }
            finally { mask?.Keep.Storage.Dispose(); }
        }
        return result;
    }

    internal static MaskSet LoadMask(string path, PrunableSet set, CpuBackend host)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: the LTH mask of this round is missing; delete the task's cells to restart its chain", path);
        return MaskFile.Load(path, set, host.Allocate(DType.U8, checked((int)set.Count)));
    }

    /// <summary>
    /// Prunes the smallest fine-tuned |w| among the unmasked weights up to <paramref name="level"/> of
    /// the whole set. The masked weights score 0 and unmasked exact zeros the smallest positive float,
    /// so the already pruned weights come first and the masks are nested.
    /// </summary>
    private static unsafe void WriteNextMask(BertParameters tuned, MaskSet? previous, PrunableSet set, CpuBackend host, double level, int round, string path)
    {
        int n = checked((int)set.Count);
        var scores = host.Allocate(DType.F32, n);
        try
        {
            var s = scores.F32Span();
            tuned.Backend.CopyToHost(tuned.PrunableValues, s);
            ReadOnlySpan<byte> keep = previous == null ? default : previous.Keep.U8Span();
            for (int i = 0; i < n; i++)
            {
                float a = MathF.Abs(s[i]);
                s[i] = previous != null && keep[i] == 0 ? 0f : a == 0f ? float.Epsilon : a;
            }
            var scored = new PrunableSet(scores, set.Matrices);
            var mask = Masks.GlobalMagnitude(scored, level);
            try
            {
                var described = new MaskSet(set, mask.Keep, MaskKind.GlobalMagnitude, level,
                    string.Create(Inv, $"LTH round {round}: {Pct(level)} by fine-tuned |w|, survivors rewound to pre-trained"));
                Directory.CreateDirectory(Path.GetDirectoryName(path)!);
                string tmp = path + ".tmp";
                MaskFile.Save(tmp, described);
                File.Move(tmp, path, overwrite: true);
            }
            finally { mask.Keep.Storage.Dispose(); }
        }
        finally { scores.Storage.Dispose(); }
    }
}
