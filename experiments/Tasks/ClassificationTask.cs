namespace NativeSparsity.Experiments.Tasks;

/// <summary>
/// One example: a text, an optional second text (pair tasks), and either a class label or, for a
/// regression task, a float target (Label is then 0 and unused).
/// </summary>
public sealed record TaskExample(string TextA, string? TextB, int Label, float Target = 0f)
{
    /// <summary>What the example was built from (WordNet tasks: the first text's synset, e.g. "n02084071"); splits never share one.</summary>
    public string? SourceId { get; init; }
}

/// <summary>Evaluation metrics a task can report.</summary>
public enum TaskMetric { Accuracy, F1, Matthews, Pearson, Spearman }

public static class TaskMetricNames
{
    public static string Name(this TaskMetric metric) => metric switch
    {
        TaskMetric.Accuracy => "accuracy",
        TaskMetric.F1 => "f1",
        TaskMetric.Matthews => "matthews",
        TaskMetric.Pearson => "pearson",
        TaskMetric.Spearman => "spearman",
        _ => throw new ArgumentOutOfRangeException(nameof(metric), metric, null),
    };
}

/// <summary>A named list of examples (train, dev, dev_matched, test, ...).</summary>
public sealed record TaskSplit(string Name, IReadOnlyList<TaskExample> Examples)
{
    /// <summary>Lines of the source file that were skipped as malformed (QQP has some); 0 for built tasks.</summary>
    public int SkippedRows { get; init; }
}

/// <summary>Size, label counts and the majority-class baseline of one split.</summary>
public sealed record SplitStatistics(
    string Split, int Count, IReadOnlyList<int> LabelCounts, int MajorityLabel, double MajorityBaseline, double OwnMajorityFraction)
{
    /// <summary>Labels that occur at least once in this split.</summary>
    public IEnumerable<int> PresentLabels => Enumerable.Range(0, LabelCounts.Count).Where(l => LabelCounts[l] > 0);
}

/// <summary>
/// A sequence classification (or, with one label, regression) task: its splits, label names and
/// metrics. The first metric is the task's main (official) metric.
/// </summary>
public sealed class ClassificationTask
{
    public ClassificationTask(string name, IReadOnlyList<string> labelNames, IReadOnlyList<TaskMetric> metrics,
                              bool isPair, IReadOnlyList<TaskSplit> splits, string? evaluationSplit = null)
    {
        if (string.IsNullOrWhiteSpace(name)) throw new ArgumentException("a task needs a name", nameof(name));
        if (labelNames.Count < 1) throw new ArgumentException($"task '{name}' needs at least one label (1 = regression)", nameof(labelNames));
        if (metrics.Count < 1) throw new ArgumentException($"task '{name}' needs at least one metric", nameof(metrics));
        bool regression = labelNames.Count == 1;
        foreach (var m in metrics)
        {
            bool regressionMetric = m is TaskMetric.Pearson or TaskMetric.Spearman;
            if (regressionMetric != regression)
                throw new ArgumentException($"task '{name}': metric {m.Name()} does not fit a {(regression ? "regression" : "classification")} task");
            if (m == TaskMetric.F1 && labelNames.Count != 2)
                throw new ArgumentException($"task '{name}': binary F1 needs 2 labels, not {labelNames.Count}");
        }
        if (splits.Select(s => s.Name).Distinct().Count() != splits.Count)
            throw new ArgumentException($"task '{name}' has two splits with the same name");
        foreach (var split in splits)
        {
            for (int i = 0; i < split.Examples.Count; i++)
            {
                var e = split.Examples[i];
                if (!regression && (uint)e.Label >= (uint)labelNames.Count)
                    throw new ArgumentException($"task '{name}', split '{split.Name}', example {i}: label {e.Label} is outside [0, {labelNames.Count})");
                if (isPair != (e.TextB != null))
                    throw new ArgumentException($"task '{name}', split '{split.Name}', example {i}: {(isPair ? "a pair task needs a second text" : "a single-sentence task has no second text")}");
            }
        }
        Name = name;
        LabelNames = labelNames;
        Metrics = metrics;
        IsPair = isPair;
        Splits = splits;
        EvaluationSplit = evaluationSplit ?? (splits.Any(s => s.Name == "dev") ? "dev" : splits.FirstOrDefault(s => s.Name != "train")?.Name ?? "train");
        if (!splits.Any(s => s.Name == EvaluationSplit))
            throw new ArgumentException($"task '{name}' has no split '{EvaluationSplit}' to evaluate on");
    }

    public string Name { get; }

    /// <summary>Class names by label index; a single entry means regression.</summary>
    public IReadOnlyList<string> LabelNames { get; }

    /// <summary>Number of labels; 1 = regression (BertBatch.RegressionTargets).</summary>
    public int NumLabels => LabelNames.Count;

    public bool IsRegression => NumLabels == 1;
    public bool IsPair { get; }
    public IReadOnlyList<TaskMetric> Metrics { get; }
    public TaskMetric MainMetric => Metrics[0];
    public IEnumerable<string> MetricNames => Metrics.Select(m => m.Name());
    public IReadOnlyList<TaskSplit> Splits { get; }

    /// <summary>The split model selection uses (dev; dev_matched for MNLI).</summary>
    public string EvaluationSplit { get; }

    public IReadOnlyList<TaskExample> Train => Split("train");
    public IReadOnlyList<TaskExample> Dev => Split(EvaluationSplit);
    public bool HasSplit(string split) => Splits.Any(s => s.Name == split);

    public IReadOnlyList<TaskExample> Split(string split) =>
        Splits.FirstOrDefault(s => s.Name == split)?.Examples
        ?? throw new KeyNotFoundException($"task '{Name}' has no split '{split}' (it has {string.Join(", ", Splits.Select(s => s.Name))})");

    /// <summary>
    /// Label counts of a split and its majority-class baseline: the accuracy of always predicting
    /// the train split's most frequent label (lowest index on a tie), the honest baseline for a model
    /// that only saw train. OwnMajorityFraction is the split's own most frequent label's share.
    /// For regression the counts hold the one "label" and the baselines are NaN.
    /// </summary>
    public SplitStatistics Statistics(string split)
    {
        var examples = Split(split);
        if (IsRegression) return new SplitStatistics(split, examples.Count, new[] { examples.Count }, 0, double.NaN, double.NaN);
        int[] counts = CountLabels(examples);
        int[] trainCounts = HasSplit("train") ? CountLabels(Train) : counts;
        int majority = ArgMax(trainCounts);
        double baseline = examples.Count == 0 ? double.NaN : (double)counts[majority] / examples.Count;
        double own = examples.Count == 0 ? double.NaN : (double)counts[ArgMax(counts)] / examples.Count;
        return new SplitStatistics(split, examples.Count, counts, majority, baseline, own);
    }

    /// <summary>Accuracy of always predicting train's majority label on <paramref name="split"/>.</summary>
    public double MajorityBaseline(string split) => Statistics(split).MajorityBaseline;

    private int[] CountLabels(IReadOnlyList<TaskExample> examples)
    {
        var counts = new int[NumLabels];
        foreach (var e in examples) counts[e.Label]++;
        return counts;
    }

    private static int ArgMax(int[] counts)
    {
        int best = 0;
        for (int i = 1; i < counts.Length; i++) if (counts[i] > counts[best]) best = i;
        return best;
    }

    /// <summary>A Markdown table of every split: size, label counts, majority baseline.</summary>
    public string DescribeMarkdown()
    {
        var sb = new System.Text.StringBuilder();
        sb.AppendLine($"{Name}: {(IsRegression ? "regression" : $"{NumLabels} classes")}, {(IsPair ? "pair" : "single sentence")}, metrics {string.Join(", ", MetricNames)}");
        sb.AppendLine();
        sb.AppendLine("| split | examples | classes present | largest class share | majority baseline (train's majority) |");
        sb.AppendLine("|---|---|---|---|---|");
        foreach (var s in Splits)
        {
            var st = Statistics(s.Name);
            string present = IsRegression ? "-" : st.PresentLabels.Count().ToString(System.Globalization.CultureInfo.InvariantCulture);
            sb.AppendLine(System.FormattableString.Invariant(
                $"| {s.Name} | {st.Count} | {present} | {st.OwnMajorityFraction:P1} | {st.MajorityBaseline:P1} ({(IsRegression ? "-" : LabelNames[st.MajorityLabel])}) |"));
        }
        return sb.ToString();
    }
}
