using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using NativeSparsity.Engine.Backends;
using NativeSparsity.Engine.Backends.Cpu;
using NativeSparsity.Engine.Sparsity;
using NativeSparsity.Experiments.Commands;
using NativeSparsity.Experiments.Reporting;
using NativeSparsity.Experiments.Tasks;
using NativeSparsity.Experiments.Training;
using NativeSparsity.Experiments.Vision;
using NativeSparsity.Models.Bert;
using NativeSparsity.Models.Text;
using NativeSparsity.Engine.IO;
using NativeSparsity.Models.Transformer;

namespace NativeSparsity.Experiments.Studies;

/// <summary>Settings of the essential-sparsity study; the defaults are the quick CPU preset.</summary>
public sealed record EssentialStudyOptions
{
    /// <summary>Pre-trained checkpoint; null pre-trains (or reuses) <see cref="Pretrain"/> in <see cref="PretrainFolder"/>.</summary>
    public string? Checkpoint { get; init; }
    public PretrainRunOptions? Pretrain { get; init; }
    public string? PretrainFolder { get; init; }
    public IReadOnlyList<string> Tasks { get; init; } = WordNetTasks.Names;
    /// <summary>Tasks given as objects (tests); they replace <see cref="Tasks"/>.</summary>
    public IReadOnlyList<ClassificationTask>? TaskObjects { get; init; }
    public string? GlueFolder { get; init; }
    public int MaxExamples { get; init; } = 600;
    public IReadOnlyList<double> Levels { get; init; } = Enumerable.Range(1, 9).Select(i => i / 10.0).ToArray();
    public int Seeds { get; init; } = 3;
    public bool Random { get; init; }
    /// <summary>Tolerated mean drop of the main metric, as a fraction (0.01 = one point).</summary>
    public double Epsilon { get; init; } = 0.01;
    /// <summary>Sparsity whose mask the per-component chart shows (the nearest level is used).</summary>
    public double ComponentSparsity { get; init; } = 0.5;
    public FinetuneSettings Train { get; init; } = new();
    public string Device { get; init; } = "cpu";
    public int Threads { get; init; }
    public required string ReportFolder { get; init; }
    public string RerunCommand { get; init; } = "nsparse study essential";
    public bool Quiet { get; init; }
    /// <summary>The model family; <see cref="StudyModel.Vit"/> fine-tunes a ViT on Fashion-MNIST with <see cref="Vit"/>'s settings (the text-task options are then unused).</summary>
    public StudyModel Model { get; init; } = StudyModel.Bert;
    public VitStudySettings Vit { get; init; } = new();
}

/// <summary>One finished (task, mask kind, sparsity, seed) fine-tuning.</summary>
public sealed record EssentialCell(string Task, string Kind, double Sparsity, int SeedIndex, ulong Seed, string Metric, double Value,
                                   double TrainLoss, long Pruned, double Seconds, IReadOnlyDictionary<string, double> Metrics);

/// <summary>Mean and spread of one (task, kind, sparsity) over seeds; drops in metric points against the dense mean.</summary>
public sealed record EssentialPoint(string Task, string Kind, double Sparsity, int Seeds, double Mean, double Std, double MeanDropPoints, double StdPoints);

/// <summary>Per task: the essential sparsity and the sharp dropping point of the OMP curve.</summary>
public sealed record EssentialTaskSummary(string Task, string Metric, double DenseMean, double DenseStd, double MajorityBaseline,
                                          double EssentialSparsity, double SharpDropSparsity, int Train, int Eval, double BagOfWordsBaseline = double.NaN);

/// <summary>
/// The paper's main experiment (claims 1, 5, 6): prune the pre-trained weights once by global
/// magnitude (one task-agnostic mask per level, nested, from one sweep), fine-tune each task with
/// the mask fixed over several seeds, and find per task the largest sparsity whose mean drop from
/// dense stays within epsilon and the point where the drop's slope changes most. Each cell is a
/// small JSON file written when it finishes; a rerun skips finished cells.
/// </summary>
public static class EssentialStudy
{
    public const string Dense = "dense", Omp = "omp", RandomKind = "random";
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;
    private static readonly string[] Components = { "Q", "K", "V", "attention out", "intermediate", "output" };

    public static string Run(EssentialStudyOptions o)
    {
        Action<string> say = o.Quiet ? _ => { } : Console.WriteLine;
        using var folderLock = FolderLock.Acquire(o.ReportFolder, "study essential");
        if (o.Seeds < 1) throw new ArgumentException($"--seeds must be at least 1, got {o.Seeds}");
        foreach (double l in o.Levels)
            if (!(l >= 0 && l < 1)) throw new ArgumentException($"--levels: {l} is not a sparsity in [0, 1)");
        var levels = o.Levels.Where(l => l > 0).Distinct().OrderBy(l => l).ToArray();
        if (levels.Length == 0) throw new ArgumentException("--levels: give at least one sparsity above 0");
        Directory.CreateDirectory(o.ReportFolder);

        using IStudyFamily family = o.Model == StudyModel.Vit ? VitStudyFamily.Open(o, say) : OpenBert(o, say);
        var tasks = family.Tasks;

        // One global magnitude sweep over the pre-trained weights: nested, task-agnostic masks.
        var set = family.PretrainedPrunableSet();
        var masks = Masks.GlobalMagnitudeSweep(set, levels);
        say($"checkpoint {family.Checkpoint}: {set.Count:N0} prunable weights; OMP masks at {string.Join(", ", levels.Select(l => l.ToString("P0", Inv)))}");

        var cells = new List<(StudyTask Task, string Kind, double Level, int SeedIndex)>();
        foreach (var task in tasks)
            for (int s = 0; s < o.Seeds; s++)
            {
                cells.Add((task, Dense, 0, s));
                foreach (double l in levels) cells.Add((task, Omp, l, s));
                if (o.Random) foreach (double l in levels) cells.Add((task, RandomKind, l, s));
            }
        // Seed-major order: an interrupted study already has every level at the first seeds.
        cells = cells.OrderBy(c => c.SeedIndex).ToList();

        string what = $"{tasks.Count} task{(tasks.Count == 1 ? "" : "s")} x {o.Seeds} seeds x (dense + {levels.Length} OMP{(o.Random ? $" + {levels.Length} random" : "")})";
        var results = RunCells(o, family, cells, what, say, out string backendName, c =>
            c.Kind switch
            {
                Omp => (masks[Array.IndexOf(levels, c.Level)], false),
                RandomKind => (Masks.RandomGlobal(set, c.Level, family.BaseSeed + (ulong)c.SeedIndex, stream: 0x7a5c), true),
                _ => (null, false),
            });

        return WriteReport(o, family, levels, results, masks, backendName);
    }

    private static BertStudyFamily OpenBert(EssentialStudyOptions o, Action<string> say)
    {
        var (checkpoint, tokenizer, tasks) = Prepare(o, say);
        return new BertStudyFamily(o, checkpoint, tokenizer, tasks);
    }

    /// <summary>
    /// What every fine-tuning study starts with: the checkpoint (given, or pre-trained once and
    /// cached), the settings guard on the report folder, the tokenizer and the tasks.
    /// </summary>
    internal static (string Checkpoint, ITokenizer Tokenizer, IReadOnlyList<ClassificationTask> Tasks) Prepare(EssentialStudyOptions o, Action<string> say)
    {
        Directory.CreateDirectory(o.ReportFolder);
        if (o.Checkpoint != null && !Directory.Exists(o.Checkpoint)) throw new DirectoryNotFoundException($"--checkpoint: no folder '{o.Checkpoint}'");
        string checkpoint = o.Checkpoint ?? PretrainOrReuse(o, say);
        CheckSettings(o, checkpoint);
        // Every cell loads the checkpoint with a classifier: say once what that adds fresh.
        if (BertLoadReport.DescribeFresh(BertCheckpoint.MissingFor(checkpoint, BertHeads.SequenceClassification(2))) is { } fresh) say(fresh);
        var tokenizer = Tokenizers.LoadFor(checkpoint, BertCheckpoint.ReadConfig(checkpoint).VocabSize);
        var tasks = o.TaskObjects ?? o.Tasks.Select(t =>
        {
            say($"task {t}: building");
            return FinetuneCommand.LoadTask(t, o.GlueFolder, o.MaxExamples);
        }).ToList();
        return (checkpoint, tokenizer, tasks);
    }

    /// <summary>
    /// Fine-tunes one cell from the checkpoint with the mask fixed (null: dense) and stores it;
    /// <paramref name="afterTraining"/> sees the fine-tuned parameters before they are freed.
    /// </summary>
    internal static EssentialCell RunCell(EssentialStudyOptions o, string checkpoint, IBackend backend, ITokenizer tokenizer, ClassificationTask task,
                                          string kind, double level, int seedIndex, MaskSet? mask, ProgressLine progress, int finished, string label,
                                          Action<BertParameters>? afterTraining = null)
    {
        var cell = FinetuneBert(o, checkpoint, backend, tokenizer, task, kind, level, seedIndex, mask, s =>
        {
            if (!o.Quiet) progress.Update(finished, $"{label}: step {s.Step}/{s.TotalSteps} loss {s.Loss:F3}");
        }, afterTraining);
        WriteCell(CellPath(o.ReportFolder, task.Name, kind, level, seedIndex), cell);
        return cell;
    }

    /// <summary>Fine-tunes one BERT cell (not stored); <paramref name="afterTraining"/> sees the fine-tuned parameters before they are freed.</summary>
    internal static EssentialCell FinetuneBert(EssentialStudyOptions o, string checkpoint, IBackend backend, ITokenizer tokenizer, ClassificationTask task,
                                               string kind, double level, int seedIndex, MaskSet? mask, Action<FinetuneStep> onStep,
                                               Action<BertParameters>? afterTraining)
    {
        ulong seed = o.Train.Seed + (ulong)seedIndex;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        using var parameters = BertFinetuner.LoadForTask(checkpoint, backend, task, seed);
        using var tuner = new BertFinetuner(parameters, task, tokenizer, o.Train with { Seed = seed, EvaluateEveryEpoch = false }, mask);
        var epochs = tuner.Train(onStep);
        var last = epochs[^1];
        string metric = task.MainMetric.Name();
        var cell = new EssentialCell(task.Name, kind, level, seedIndex, seed, metric, last.Metrics[metric], last.TrainLoss,
            tuner.PrunedCount, clock.Elapsed.TotalSeconds, last.Metrics);
        afterTraining?.Invoke(parameters);
        return cell;
    }

    /// <summary>
    /// Reads the finished cells and fine-tunes the others in order, each with the mask
    /// <paramref name="maskFor"/> gives (and frees when it says so).
    /// </summary>
    internal static List<EssentialCell> RunCells(EssentialStudyOptions o, string checkpoint, ITokenizer tokenizer,
                                                 IReadOnlyList<(ClassificationTask Task, string Kind, double Level, int SeedIndex)> cells, string what,
                                                 Action<string> say, out string backendName,
                                                 Func<(ClassificationTask Task, string Kind, double Level, int SeedIndex), (MaskSet? Mask, bool Free)> maskFor)
    {
        using var family = new BertStudyFamily(o, checkpoint, tokenizer, cells.Select(c => c.Task).Distinct().ToList());
        var byName = cells.Select(c => c.Task).Distinct().ToDictionary(t => t.Name);
        var studyTasks = family.Tasks.ToDictionary(t => t.Name);
        return RunCells(o, family, cells.Select(c => (studyTasks[c.Task.Name], c.Kind, c.Level, c.SeedIndex)).ToList(), what, say, out backendName,
            c => maskFor((byName[c.Task.Name], c.Kind, c.Level, c.SeedIndex)));
    }

    /// <summary>The same for any model family.</summary>
    internal static List<EssentialCell> RunCells(EssentialStudyOptions o, IStudyFamily family,
                                                 IReadOnlyList<(StudyTask Task, string Kind, double Level, int SeedIndex)> cells, string what,
                                                 Action<string> say, out string backendName,
                                                 Func<(StudyTask Task, string Kind, double Level, int SeedIndex), (MaskSet? Mask, bool Free)> maskFor)
    {
        var results = new List<EssentialCell>();
        var todo = new List<(StudyTask Task, string Kind, double Level, int SeedIndex)>();
        foreach (var c in cells)
        {
            var done = TryReadCell(CellPath(o.ReportFolder, c.Task.Name, c.Kind, c.Level, c.SeedIndex));
            if (done != null) results.Add(done); else todo.Add(c);
        }
        say($"{cells.Count} cells ({what}); {results.Count} already done, {todo.Count} to run");

        using var backend = BackendFactory.Create(o.Device, out backendName, o.Threads);
        say($"device: {backendName}");
        var progress = new ProgressLine(cells.Count, results.Count, unit: "cell");
        int finished = results.Count;
        foreach (var c in todo)
        {
            var (mask, free) = maskFor(c);
            string label = $"{c.Task.Name} {c.Kind} {c.Level:P0} seed {c.SeedIndex + 1}/{o.Seeds}";
            var cell = family.Finetune(backend, c.Task, c.Kind, c.Level, c.SeedIndex, mask, s =>
            {
                if (!o.Quiet) progress.Update(finished, $"{label}: step {s.Step}/{s.TotalSteps} loss {s.Loss:F3}");
            });
            WriteCell(CellPath(o.ReportFolder, c.Task.Name, c.Kind, c.Level, c.SeedIndex), cell);
            if (free) mask!.Keep.Storage.Dispose();
            results.Add(cell);
            finished++;
            if (!o.Quiet) progress.Update(finished, $"{label}: {cell.Metric} {cell.Value:F4}", force: true);
        }
        if (!o.Quiet) progress.Finish();
        return results;
    }

    /// <summary>Pre-trains the quick model once into the cache folder, or reuses it when finished.</summary>
    private static string PretrainOrReuse(EssentialStudyOptions o, Action<string> say)
    {
        var template = o.Pretrain ?? throw new ArgumentException("give --checkpoint, or pre-training options for the study to pre-train its own model");
        string folder = o.PretrainFolder ?? Path.Combine(PretrainRun.DefaultCacheFolder, "pretrained",
            string.Create(Inv, $"essential-{template.Preset}-{template.Train.Steps}steps-seed{template.Train.Seed}-{SettingsHash(template)}"));
        string last = Path.Combine(folder, PretrainRun.CheckpointsFolder, $"step-{template.Train.Steps:D7}");
        if (Directory.Exists(last))
        {
            say($"pre-trained model found: {last}");
            return last;
        }
        say($"no --checkpoint: pre-training a {template.Preset} model into {folder} (reused by later runs)");
        var summary = PretrainRun.Run(template with { OutputFolder = folder, Resume = true, Quiet = o.Quiet }, waitForFolder: true);
        return summary.LastCheckpoint;
    }

    /// <summary>
    /// Eight hex digits of the pre-training settings, so a cached model is only reused by runs that
    /// asked for the same one (device, threads and verbosity do not change the model).
    /// </summary>
    internal static string SettingsHash(PretrainRunOptions template) =>
        HashOf(template with { OutputFolder = "", Device = "", Threads = 0, Quiet = false, Resume = false });

    /// <summary>Eight hex digits of SHA-256 over the JSON form of <paramref name="settings"/>.</summary>
    internal static string HashOf<T>(T settings) =>
        Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(SettingsJson.ToUtf8Bytes(settings)))[..8];

    /// <summary>
    /// Cells are only comparable when made with the same model and fine-tuning settings: the first
    /// run records them, a rerun with others is refused (seeds, levels and tasks may change).
    /// </summary>
    internal static void CheckSettings(EssentialStudyOptions o, string checkpoint) => CheckSettings(o, new JsonObject
    {
        ["checkpoint"] = Path.GetFullPath(checkpoint),
        ["fine_tuning"] = SettingsJson.ToNode(o.Train with { EvaluateEveryEpoch = false }),
        ["max_examples"] = o.MaxExamples,
        ["glue_dir"] = o.GlueFolder,
    });

    /// <summary>The guard with a family's own description of what makes cells comparable.</summary>
    internal static void CheckSettings(EssentialStudyOptions o, JsonObject description)
    {
        string settings = description.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
        string path = Path.Combine(o.ReportFolder, "study.json");
        if (File.Exists(path) && File.ReadAllText(path) != settings)
            throw new InvalidOperationException($"{path}: the cells in {o.ReportFolder} were made with another checkpoint or other fine-tuning settings; " +
                                                "rerun with the same options or choose another --out");
        File.WriteAllText(path, settings);
    }

    public static string CellPath(string report, string task, string kind, double level, int seedIndex) =>
        Path.Combine(report, "cells", Sanitize(task), string.Create(Inv, $"{kind}-{level:0.####}-seed{seedIndex}.json"));

    internal static string Sanitize(string name) => string.Concat(name.Select(ch => char.IsLetterOrDigit(ch) || ch is '-' or '_' ? ch : '_'));

    internal static void WriteCell(string path, EssentialCell cell)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var json = new JsonObject
        {
            ["task"] = cell.Task, ["kind"] = cell.Kind, ["sparsity"] = cell.Sparsity, ["seed_index"] = cell.SeedIndex, ["seed"] = cell.Seed.ToString(Inv),
            ["metric"] = cell.Metric, ["value"] = Finite(cell.Value), ["train_loss"] = Finite(cell.TrainLoss), ["pruned"] = cell.Pruned,
            ["seconds"] = cell.Seconds,
            ["metrics"] = new JsonObject(cell.Metrics.Select(kv => KeyValuePair.Create(kv.Key, Finite(kv.Value)))),
        };
        // Written beside and renamed, so an interrupted study never leaves a half cell.
        string tmp = path + ".tmp";
        File.WriteAllText(tmp, json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        File.Move(tmp, path, overwrite: true);
    }

    public static EssentialCell? TryReadCell(string path)
    {
        if (!File.Exists(path)) return null;
        try
        {
            var o = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
            double D(JsonNode? n) => n == null ? double.NaN : n.GetValue<double>();
            var metrics = o["metrics"]!.AsObject().ToDictionary(kv => kv.Key, kv => D(kv.Value));
            return new EssentialCell(o["task"]!.GetValue<string>(), o["kind"]!.GetValue<string>(), D(o["sparsity"]), o["seed_index"]!.GetValue<int>(),
                ulong.Parse(o["seed"]!.GetValue<string>(), Inv), o["metric"]!.GetValue<string>(), D(o["value"]), D(o["train_loss"]),
                o["pruned"]!.GetValue<long>(), D(o["seconds"]), metrics);
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or NullReferenceException or FormatException)
        {
            return null;   // unreadable: run the cell again
        }
    }

    private static JsonNode? Finite(double v) => double.IsFinite(v) ? JsonValue.Create(v) : null;

    /// <summary>Mean and spread per (task, kind, sparsity); the dense cells count as sparsity 0 of every kind.</summary>
    public static List<EssentialPoint> Aggregate(IReadOnlyList<EssentialCell> cells)
    {
        var points = new List<EssentialPoint>();
        foreach (var byTask in cells.GroupBy(c => c.Task))
        {
            var dense = byTask.Where(c => c.Kind == Dense).Select(c => c.Value).ToArray();
            double denseMean = dense.Length > 0 ? dense.Average() : double.NaN;
            foreach (var g in byTask.GroupBy(c => (c.Kind, c.Sparsity)).OrderBy(g => g.Key.Kind).ThenBy(g => g.Key.Sparsity))
            {
                var v = g.Select(c => c.Value).ToArray();
                double mean = v.Average(), std = Std(v);
                points.Add(new EssentialPoint(byTask.Key, g.Key.Kind, g.Key.Sparsity, v.Length, mean, std, 100 * (denseMean - mean), 100 * std));
            }
        }
        return points;
    }

    /// <summary>Sample standard deviation (n - 1); 0 for one value.</summary>
    public static double Std(IReadOnlyList<double> v)
    {
        if (v.Count < 2) return 0;
        double m = v.Average();
        return Math.Sqrt(v.Sum(x => (x - m) * (x - m)) / (v.Count - 1));
    }

    /// <summary>
    /// The largest sparsity up to which every level's mean drop stays within epsilon (points),
    /// counting from dense; 0 when the first pruned level already drops more.
    /// </summary>
    public static double EssentialSparsity(IReadOnlyList<double> sparsity, IReadOnlyList<double> dropPoints, double epsilonPoints)
    {
        double best = 0;
        for (int i = 0; i < sparsity.Count; i++)
        {
            if (!(dropPoints[i] <= epsilonPoints)) break;
            best = sparsity[i];
        }
        return best;
    }

    /// <summary>
    /// The sparsity where the slope of drop against sparsity increases most: for interior point i,
    /// slope(i, i+1) - slope(i-1, i). NaN with fewer than three points.
    /// </summary>
    public static double SharpDropPoint(IReadOnlyList<double> sparsity, IReadOnlyList<double> dropPoints)
    {
        if (sparsity.Count < 3) return double.NaN;
        double bestChange = double.NegativeInfinity, at = double.NaN;
        for (int i = 1; i < sparsity.Count - 1; i++)
        {
            double before = (dropPoints[i] - dropPoints[i - 1]) / (sparsity[i] - sparsity[i - 1]);
            double after = (dropPoints[i + 1] - dropPoints[i]) / (sparsity[i + 1] - sparsity[i]);
            if (after - before > bestChange) { bestChange = after - before; at = sparsity[i]; }
        }
        return at;
    }

    private static (double[] X, double[] Y, double[] Std) Curve(List<EssentialPoint> points, string task, string kind)
    {
        var dense = points.Where(p => p.Task == task && p.Kind == Dense).ToList();
        var rows = dense.Concat(points.Where(p => p.Task == task && p.Kind == kind)).OrderBy(p => p.Sparsity).ToList();
        return (rows.Select(p => p.Sparsity).ToArray(), rows.Select(p => p.MeanDropPoints).ToArray(), rows.Select(p => p.StdPoints).ToArray());
    }

    private static string WriteReport(EssentialStudyOptions o, IStudyFamily family, double[] levels, List<EssentialCell> cells,
                                      MaskSet[] masks, string backend)
    {
        string folder = o.ReportFolder;
        var culture = CultureInfo.CurrentCulture;
        CultureInfo.CurrentCulture = Inv;   // numbers in the Markdown read the same everywhere
        try { return WriteReportInvariant(o, family, levels, cells, masks, backend, folder); }
        finally { CultureInfo.CurrentCulture = culture; }
    }

    private static string WriteReportInvariant(EssentialStudyOptions o, IStudyFamily family, double[] levels, List<EssentialCell> cells,
                                               MaskSet[] masks, string backend, string folder)
    {
        var tasks = family.Tasks;
        string checkpoint = family.Checkpoint;
        var cellsCsv = new StringBuilder("task,kind,sparsity,seed_index,seed,metric,value,train_loss,pruned,seconds\n");
        foreach (var c in cells.OrderBy(c => c.Task, StringComparer.Ordinal).ThenBy(c => c.Kind, StringComparer.Ordinal).ThenBy(c => c.Sparsity).ThenBy(c => c.SeedIndex))
            cellsCsv.Append(string.Join(",", c.Task, c.Kind, c.Sparsity.ToString("R", Inv), c.SeedIndex.ToString(Inv), c.Seed.ToString(Inv), c.Metric,
                c.Value.ToString("R", Inv), c.TrainLoss.ToString("R", Inv), c.Pruned.ToString(Inv), c.Seconds.ToString("F2", Inv))).Append('\n');
        File.WriteAllText(Path.Combine(folder, "cells.csv"), cellsCsv.ToString());

        var points = Aggregate(cells);
        var summaryCsv = new StringBuilder("task,kind,sparsity,seeds,mean,std,mean_drop_points,std_points\n");
        foreach (var p in points)
            summaryCsv.Append(string.Join(",", p.Task, p.Kind, p.Sparsity.ToString("R", Inv), p.Seeds.ToString(Inv), p.Mean.ToString("R", Inv),
                p.Std.ToString("R", Inv), p.MeanDropPoints.ToString("R", Inv), p.StdPoints.ToString("R", Inv))).Append('\n');
        File.WriteAllText(Path.Combine(folder, "summary.csv"), summaryCsv.ToString());

        double eps = 100 * o.Epsilon;
        var summaries = new List<EssentialTaskSummary>();
        foreach (var t in tasks)
        {
            var (x, y, _) = Curve(points, t.Name, Omp);
            var dense = cells.Where(c => c.Task == t.Name && c.Kind == Dense).Select(c => c.Value).ToArray();
            summaries.Add(new EssentialTaskSummary(t.Name, t.Metric, dense.Average(), Std(dense),
                t.MajorityBaseline, EssentialSparsity(x, y, eps), SharpDropPoint(x, y), t.Train, t.Eval, t.BagOfWordsBaseline));
        }

        var curves = new List<DropCurve>();
        foreach (var t in tasks)
        {
            var (x, y, sd) = Curve(points, t.Name, Omp);
            curves.Add(new DropCurve($"{t.Name} (OMP)", x, y, sd));
            if (o.Random)
            {
                var (rx, ry, rsd) = Curve(points, t.Name, RandomKind);
                curves.Add(new DropCurve($"{t.Name} (random)", rx, ry, rsd, Dashed: true));
            }
        }
        EssentialPlots.DropChart(Path.Combine(folder, "drop_vs_sparsity.png"),
            $"Drop from dense after fine-tuning with the mask fixed (mean ± std, {o.Seeds} seed{(o.Seeds > 1 ? "s" : "")})", curves, eps);

        // Where the pruned weights sit, at the level nearest the chosen sparsity.
        int pick = Array.IndexOf(levels, levels.OrderBy(l => Math.Abs(l - o.ComponentSparsity)).First());
        var mask = masks[pick];
        var perMatrix = mask.PrunedPerMatrix();
        int layers = mask.Set.Matrices.Max(m => m.Layer) + 1;
        var shares = new double[layers][];
        for (int l = 0; l < layers; l++) shares[l] = new double[Components.Length];
        for (int i = 0; i < perMatrix.Length; i++)
        {
            var m = mask.Set.Matrices[i];
            int comp = ComponentOf(m.Name);
            if (m.Layer >= 0 && comp >= 0) shares[m.Layer][comp] = (double)perMatrix[i] / m.Count;
        }
        Plots.GroupedBars(Path.Combine(folder, "pruned_by_component.png"),
            $"Share of each matrix pruned by the global mask at {levels[pick]:P0}", "share pruned", Components,
            Enumerable.Range(0, layers).Select(l => ($"layer {l}", shares[l])).ToList());
        var compCsv = new StringBuilder("layer," + string.Join(",", Components.Select(c => c.Replace(' ', '_'))) + "\n");
        for (int l = 0; l < layers; l++) compCsv.Append(l.ToString(Inv)).Append(',').Append(string.Join(",", shares[l].Select(v => v.ToString("R", Inv)))).Append('\n');
        File.WriteAllText(Path.Combine(folder, "pruned_by_component.csv"), compCsv.ToString());

        var md = new StringBuilder();
        md.AppendLine($"# Essential sparsity of a pre-trained {family.ModelName}").AppendLine();
        md.AppendLine($"Checkpoint `{checkpoint}`, device {backend}. One global magnitude (OMP) mask per level over the encoder's weight matrices " +
                      "(Q, K, V, attention output, intermediate, output of every layer), computed once from the pre-trained weights and shared by all tasks; " +
                      "each cell fine-tunes with the mask fixed (pruned weights stay exactly 0).").AppendLine();
        md.AppendLine(family.SettingsParagraph(levels)).AppendLine();
        md.AppendLine(($"Metric: {family.MetricSentence}. Drop = dense mean - mean at the level, in points (x100). " +
                      $"Essential sparsity = the largest level up to which every level's mean drop stays within epsilon = {eps:0.##} points. " +
                      "Sharp dropping point = the level where the slope of the drop against sparsity increases most.")).AppendLine();
        bool bow = summaries.Any(s => !double.IsNaN(s.BagOfWordsBaseline));
        md.AppendLine($"| task | train / {family.EvalSplit} | metric | dense (mean ± std) | majority baseline |{(bow ? " bag-of-words baseline |" : "")} essential sparsity | sharp dropping point |");
        md.AppendLine($"| --- | --- | --- | --- | --- |{(bow ? " --- |" : "")} --- | --- |");
        foreach (var s in summaries)
            md.AppendLine(string.Create(Inv, $"| {s.Task} | {s.Train} / {s.Eval} | {s.Metric} | {100 * s.DenseMean:F1} ± {100 * s.DenseStd:F1} | " +
                          $"{(double.IsNaN(s.MajorityBaseline) ? "-" : $"{100 * s.MajorityBaseline:F1} (accuracy)")} | " +
                          $"{(bow ? (double.IsNaN(s.BagOfWordsBaseline) ? "- | " : $"{100 * s.BagOfWordsBaseline:F1} | ") : "")}{s.EssentialSparsity:P0} | " +
                          $"{(double.IsNaN(s.SharpDropSparsity) ? "-" : s.SharpDropSparsity.ToString("P0", Inv))} |"));
        md.AppendLine();
        var weak = summaries.Where(s => !double.IsNaN(s.MajorityBaseline) && s.DenseMean - s.MajorityBaseline < 0.05).Select(s => s.Task).ToList();
        if (weak.Count > 0)
            md.AppendLine($"Caution: dense fine-tuning of {string.Join(", ", weak)} ends within 5 points of the majority baseline, so the model barely learned " +
                          "these tasks and their drops mostly measure seed noise (a stronger pre-trained model, more examples or more steps fix this).").AppendLine();
        var belowWords = summaries.Where(s => !double.IsNaN(s.BagOfWordsBaseline) && s.DenseMean <= s.BagOfWordsBaseline).Select(s => s.Task).ToList();
        if (belowWords.Count > 0)
            md.AppendLine($"**Flag: the dense fine-tuned model does not beat the bag-of-words baseline on {string.Join(", ", belowWords)}** " +
                          "(multinomial Naive Bayes on word counts, trained on the same training examples, scored on the same split): " +
                          "on these tasks the transformer has learned no more than word identity, so its drops say little about pre-trained knowledge.").AppendLine();
        family.AppendFindings(md, cells);
        md.AppendLine("Mean drop (points) ± std over seeds, OMP:").AppendLine();
        md.AppendLine("| task | " + string.Join(" | ", levels.Select(l => l.ToString("P0", Inv))) + " |");
        md.AppendLine("| --- |" + string.Concat(levels.Select(_ => " --- |")));
        foreach (var t in tasks)
            md.AppendLine($"| {t.Name} | " + string.Join(" | ", levels.Select(l =>
            {
                var p = points.FirstOrDefault(p => p.Task == t.Name && p.Kind == Omp && p.Sparsity == l);
                return p == null ? "-" : string.Create(Inv, $"{p.MeanDropPoints:F1} ± {p.StdPoints:F1}");
            })) + " |");
        md.AppendLine();
        md.AppendLine(CompressedSizes(masks, levels)).AppendLine();
        md.AppendLine("![drop vs sparsity](drop_vs_sparsity.png)").AppendLine();
        md.AppendLine(string.Create(Inv, $"Where the pruned weights sit at {levels[pick]:P0} (share of each matrix pruned, per layer; `pruned_by_component.csv`):")).AppendLine();
        md.AppendLine("![pruned by component](pruned_by_component.png)").AppendLine();
        md.AppendLine("Data: `cells.csv` (one row per task, mask kind, level and seed), `summary.csv` (mean and spread per level), `cells/` (one JSON per finished cell, all metrics).").AppendLine();
        md.AppendLine("Rerun (finished cells are skipped; an interrupted study loses at most the cell in progress):").AppendLine();
        md.AppendLine("```sh").AppendLine(o.RerunCommand).AppendLine("```");
        string path = Path.Combine(folder, "summary.md");
        File.WriteAllText(path, md.ToString());
        return path;
    }

    /// <summary>The prunable matrices' size on disk at each level, dense F32 and in sparse-bitmask layout (`--compress`).</summary>
    private static string CompressedSizes(MaskSet[] masks, double[] levels)
    {
        var matrices = masks[0].Set.Matrices;
        long dense = matrices.Sum(m => m.Count) * sizeof(float);
        var sizes = masks.Select((mask, i) =>
        {
            var pruned = mask.PrunedPerMatrix();
            long bytes = CompressedCheckpoint.CompressedBytes(matrices.Select((m, j) => ((long)m.Rows, (long)m.Cols, m.Count - pruned[j])));
            return string.Create(Inv, $"{levels[i]:P0}: {CompressedCheckpoint.FormatBytes(bytes)} ({(double)bytes / dense:P0})");
        });
        return $"Prunable matrices on disk: {CompressedCheckpoint.FormatBytes(dense)} dense (F32); in sparse-bitmask layout (`--compress`) " + string.Join(", ", sizes) + ".";
    }

    // BERT names Q, K, V "attention.self.*", ViT (Hugging Face) "attention.attention.*".
    private static int ComponentOf(string name) =>
        name.Contains("attention.self.query", StringComparison.Ordinal) || name.Contains("attention.attention.query", StringComparison.Ordinal) ? 0
        : name.Contains("attention.self.key", StringComparison.Ordinal) || name.Contains("attention.attention.key", StringComparison.Ordinal) ? 1
        : name.Contains("attention.self.value", StringComparison.Ordinal) || name.Contains("attention.attention.value", StringComparison.Ordinal) ? 2
        : name.Contains("attention.output.dense", StringComparison.Ordinal) ? 3
        : name.Contains("intermediate.dense", StringComparison.Ordinal) ? 4
        : name.Contains("output.dense", StringComparison.Ordinal) ? 5 : -1;
}
