using System.Globalization;
using System.Text;

namespace NativeSparsity.Experiments.Tasks;

/// <summary>A GLUE file line that does not have the expected layout; names the file and line.</summary>
public sealed class GlueFormatException : FormatException
{
    public GlueFormatException(string path, long lineNumber, string problem)
        : base($"GLUE file '{path}', line {lineNumber}: {problem}")
    {
        FilePath = path;
        LineNumber = lineNumber;
    }

    public string FilePath { get; }
    public long LineNumber { get; }
}

/// <summary>
/// Loads the nine GLUE tasks from the layout the GLUE download script leaves: one folder per task
/// (CoLA, SST-2, MRPC, STS-B, QQP, MNLI, QNLI, RTE, WNLI) with train.tsv and dev.tsv (MNLI:
/// dev_matched.tsv and dev_mismatched.tsv). Lines are split on tabs with no quote handling (the files
/// are not quote-aware: a '"' is text). Columns are found by header name where the file has a header
/// (CoLA has none). Test files carry no labels and are not loaded.
/// </summary>
public static class GlueTasks
{
    /// <summary>Task names, as the folders are called.</summary>
    public static IReadOnlyList<string> Names { get; } = new[] { "CoLA", "SST-2", "MRPC", "STS-B", "QQP", "MNLI", "QNLI", "RTE", "WNLI" };

    private static readonly string[] Binary = { "0", "1" };
    private static readonly string[] Nli3 = { "contradiction", "entailment", "neutral" };
    private static readonly string[] Nli2 = { "entailment", "not_entailment" };

    /// <summary>How one task's files are laid out.</summary>
    private sealed record Layout(
        string Name, string[] Labels, TaskMetric[] Metrics, string TextA, string? TextB, string Label,
        string[] SplitFiles, bool SkipMalformed = false, string[]? FixedColumns = null);

    private static Layout LayoutOf(string task) => task switch
    {
        // CoLA train/dev: no header; source, label, original label (a star or empty), sentence.
        "CoLA" => new("CoLA", Binary, new[] { TaskMetric.Matthews }, "sentence", null, "label", new[] { "train", "dev" },
                      FixedColumns: new[] { "source", "label", "original_label", "sentence" }),
        "SST-2" => new("SST-2", Binary, new[] { TaskMetric.Accuracy }, "sentence", null, "label", new[] { "train", "dev" }),
        "MRPC" => new("MRPC", Binary, new[] { TaskMetric.F1, TaskMetric.Accuracy }, "#1 String", "#2 String", "Quality", new[] { "train", "dev" }),
        "STS-B" => new("STS-B", new[] { "score" }, new[] { TaskMetric.Pearson, TaskMetric.Spearman }, "sentence1", "sentence2", "score", new[] { "train", "dev" }),
        // QQP's raw files have rows broken by stray newlines; those are skipped and counted.
        "QQP" => new("QQP", Binary, new[] { TaskMetric.F1, TaskMetric.Accuracy }, "question1", "question2", "is_duplicate", new[] { "train", "dev" }, SkipMalformed: true),
        "MNLI" => new("MNLI", Nli3, new[] { TaskMetric.Accuracy }, "sentence1", "sentence2", "gold_label", new[] { "train", "dev_matched", "dev_mismatched" }),
        "QNLI" => new("QNLI", Nli2, new[] { TaskMetric.Accuracy }, "question", "sentence", "label", new[] { "train", "dev" }),
        "RTE" => new("RTE", Nli2, new[] { TaskMetric.Accuracy }, "sentence1", "sentence2", "label", new[] { "train", "dev" }),
        "WNLI" => new("WNLI", Binary, new[] { TaskMetric.Accuracy }, "sentence1", "sentence2", "label", new[] { "train", "dev" }),
        _ => throw new ArgumentException($"'{task}' is not a GLUE task (expected one of {string.Join(", ", Names)})", nameof(task)),
    };

    /// <summary>Canonical name of a task given in any case (e.g. "sst-2", "sts-b", "mnli").</summary>
    public static string CanonicalName(string task) =>
        Names.FirstOrDefault(n => string.Equals(n, task, StringComparison.OrdinalIgnoreCase)
                                  || string.Equals(n.Replace("-", ""), task.Replace("-", ""), StringComparison.OrdinalIgnoreCase))
        ?? throw new ArgumentException($"'{task}' is not a GLUE task (expected one of {string.Join(", ", Names)})", nameof(task));

    /// <summary>
    /// Loads <paramref name="task"/> from <paramref name="glueFolder"/>/<c>task</c>/. A split's
    /// <see cref="TaskSplit.SkippedRows"/> says how many malformed QQP rows were left out.
    /// </summary>
    /// <param name="maxExamplesPerSplit">Keep only the first n examples of each split (0 = all).</param>
    public static ClassificationTask Load(string glueFolder, string task, int maxExamplesPerSplit = 0)
    {
        var layout = LayoutOf(CanonicalName(task));
        string folder = Path.Combine(glueFolder, layout.Name);
        if (!Directory.Exists(folder))
            throw new DirectoryNotFoundException($"GLUE task folder '{folder}' does not exist (the GLUE download script puts each task in <data_dir>/{layout.Name})");
        var splits = new List<TaskSplit>();
        foreach (string split in layout.SplitFiles)
            splits.Add(ReadSplit(layout, Path.Combine(folder, split + ".tsv"), split, maxExamplesPerSplit));
        return new ClassificationTask(layout.Name, layout.Labels, layout.Metrics, layout.TextB != null, splits,
                                      evaluationSplit: layout.Name == "MNLI" ? "dev_matched" : "dev");
    }

    private static TaskSplit ReadSplit(Layout layout, string path, string split, int maxExamples)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"GLUE {layout.Name} has no {split} file '{path}'", path);
        using var reader = new StreamReader(path, new UTF8Encoding(false), detectEncodingFromByteOrderMarks: true);
        long lineNumber = 0;
        string[] columns;
        if (layout.FixedColumns != null) columns = layout.FixedColumns;
        else
        {
            string? header = reader.ReadLine();
            lineNumber++;
            if (header == null) throw new GlueFormatException(path, 1, $"empty file; expected a header naming {Required(layout)}");
            columns = header.TrimStart('\uFEFF').Split('\t');
        }
        int Column(string name) => Array.IndexOf(columns, name) is var i and >= 0 ? i
            : throw new GlueFormatException(path, 1, $"the header has no '{name}' column (it has: {string.Join(", ", columns.Select(c => $"'{c}'"))}); {layout.Name} needs {Required(layout)}");
        int colA = Column(layout.TextA), colB = layout.TextB != null ? Column(layout.TextB) : -1, colLabel = Column(layout.Label);
        bool regression = layout.Labels.Length == 1;

        var examples = new List<TaskExample>();
        int skipped = 0;
        while (reader.ReadLine() is { } line)
        {
            lineNumber++;
            if (line.Length == 0) continue;
            if (maxExamples > 0 && examples.Count >= maxExamples) break;
            string[] f = line.Split('\t');
            if (f.Length != columns.Length)
            {
                if (layout.SkipMalformed) { skipped++; continue; }
                throw new GlueFormatException(path, lineNumber, $"{f.Length} tab-separated columns, expected {columns.Length} ({string.Join(", ", columns)})");
            }
            string labelText = f[colLabel].Trim();
            int label = 0;
            float target = 0f;
            if (regression)
            {
                if (!float.TryParse(labelText, NumberStyles.Float, CultureInfo.InvariantCulture, out target) || !float.IsFinite(target))
                    throw new GlueFormatException(path, lineNumber, $"{layout.Label} '{labelText}' is not a number (expected a similarity score 0-5)");
            }
            else
            {
                label = Array.IndexOf(layout.Labels, labelText);
                if (label < 0)
                {
                    if (layout.SkipMalformed) { skipped++; continue; }
                    throw new GlueFormatException(path, lineNumber, $"{layout.Label} '{labelText}' is not one of {string.Join(", ", layout.Labels)}");
                }
            }
            examples.Add(new TaskExample(f[colA], colB >= 0 ? f[colB] : null, label, target));
        }
        return new TaskSplit(split, examples) { SkippedRows = skipped };
    }

    private static string Required(Layout layout) =>
        string.Join(", ", new[] { layout.TextA, layout.TextB, layout.Label }.Where(c => c != null).Select(c => $"'{c}'"));
}
