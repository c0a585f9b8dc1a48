namespace NativeSparsity.Experiments.Tasks;

/// <summary>
/// Evaluation metrics as GLUE reports them (scikit-learn / SciPy definitions), computed in double.
/// Degenerate inputs follow scikit-learn: F1 is 0 with no predicted and no true positives,
/// Matthews is 0 when a marginal is constant; Pearson/Spearman are NaN for a constant series
/// (as SciPy), and every metric is NaN on zero examples.
/// </summary>
public static class Metrics
{
    public static double Accuracy(ReadOnlySpan<int> predicted, ReadOnlySpan<int> gold)
    {
        CheckLengths(predicted.Length, gold.Length);
        if (gold.Length == 0) return double.NaN;
        int correct = 0;
        for (int i = 0; i < gold.Length; i++) if (predicted[i] == gold[i]) correct++;
        return (double)correct / gold.Length;
    }

    /// <summary>Binary F1 with class 1 as the positive class.</summary>
    public static double F1(ReadOnlySpan<int> predicted, ReadOnlySpan<int> gold)
    {
        CheckLengths(predicted.Length, gold.Length);
        if (gold.Length == 0) return double.NaN;
        long tp = 0, fp = 0, fn = 0;
        for (int i = 0; i < gold.Length; i++)
        {
            bool p = predicted[i] == 1, g = gold[i] == 1;
            if (p && g) tp++;
            else if (p) fp++;
            else if (g) fn++;
        }
        return tp == 0 ? 0.0 : 2.0 * tp / (2.0 * tp + fp + fn);
    }

    /// <summary>
    /// Matthews correlation; for more than two classes Gorodkin's R_K (what scikit-learn computes):
    /// (c*s - sum_k p_k t_k) / sqrt((s^2 - sum p_k^2)(s^2 - sum t_k^2)).
    /// </summary>
    public static double Matthews(ReadOnlySpan<int> predicted, ReadOnlySpan<int> gold)
    {
        CheckLengths(predicted.Length, gold.Length);
        if (gold.Length == 0) return double.NaN;
        int classes = 0;
        for (int i = 0; i < gold.Length; i++)
        {
            if (predicted[i] < 0 || gold[i] < 0) throw new ArgumentException($"labels must be non-negative (row {i}: predicted {predicted[i]}, gold {gold[i]})");
            classes = Math.Max(classes, Math.Max(predicted[i], gold[i]) + 1);
        }
        var p = new double[classes];
        var t = new double[classes];
        double c = 0, s = gold.Length;
        for (int i = 0; i < gold.Length; i++)
        {
            p[predicted[i]]++;
            t[gold[i]]++;
            if (predicted[i] == gold[i]) c++;
        }
        double pt = 0, pp = 0, tt = 0;
        for (int k = 0; k < classes; k++) { pt += p[k] * t[k]; pp += p[k] * p[k]; tt += t[k] * t[k]; }
        double denominator = Math.Sqrt((s * s - pp) * (s * s - tt));
        return denominator == 0 ? 0.0 : (c * s - pt) / denominator;
    }

    public static double Pearson(ReadOnlySpan<float> predicted, ReadOnlySpan<float> gold)
    {
        CheckLengths(predicted.Length, gold.Length);
        var x = new double[predicted.Length];
        var y = new double[gold.Length];
        for (int i = 0; i < x.Length; i++) { x[i] = predicted[i]; y[i] = gold[i]; }
        return Pearson(x, y);
    }

    /// <summary>Spearman's rho: Pearson correlation of the ranks, tied values sharing their mean rank.</summary>
    public static double Spearman(ReadOnlySpan<float> predicted, ReadOnlySpan<float> gold)
    {
        CheckLengths(predicted.Length, gold.Length);
        return Pearson(Ranks(predicted), Ranks(gold));
    }

    /// <summary>1-based ranks; a run of equal values gets the average of the ranks it spans.</summary>
    public static double[] Ranks(ReadOnlySpan<float> values)
    {
        var order = new int[values.Length];
        for (int i = 0; i < order.Length; i++) order[i] = i;
        var keys = values.ToArray();
        Array.Sort(keys, order);
        var ranks = new double[values.Length];
        for (int start = 0; start < keys.Length;)
        {
            int end = start + 1;
            while (end < keys.Length && keys[end] == keys[start]) end++;
            double rank = (start + 1 + end) / 2.0; // mean of ranks start+1 .. end
            for (int k = start; k < end; k++) ranks[order[k]] = rank;
            start = end;
        }
        return ranks;
    }

    private static double Pearson(double[] x, double[] y)
    {
        int n = x.Length;
        if (n == 0) return double.NaN;
        double mx = 0, my = 0;
        for (int i = 0; i < n; i++) { mx += x[i]; my += y[i]; }
        mx /= n; my /= n;
        double sxy = 0, sxx = 0, syy = 0;
        for (int i = 0; i < n; i++)
        {
            double dx = x[i] - mx, dy = y[i] - my;
            sxy += dx * dy; sxx += dx * dx; syy += dy * dy;
        }
        return sxx == 0 || syy == 0 ? double.NaN : sxy / Math.Sqrt(sxx * syy);
    }

    /// <summary>A classification metric by kind (regression metrics need the float overload).</summary>
    public static double Compute(TaskMetric metric, ReadOnlySpan<int> predicted, ReadOnlySpan<int> gold) => metric switch
    {
        TaskMetric.Accuracy => Accuracy(predicted, gold),
        TaskMetric.F1 => F1(predicted, gold),
        TaskMetric.Matthews => Matthews(predicted, gold),
        _ => throw new ArgumentException($"{metric.Name()} is a regression metric; pass float predictions"),
    };

    public static double Compute(TaskMetric metric, ReadOnlySpan<float> predicted, ReadOnlySpan<float> gold) => metric switch
    {
        TaskMetric.Pearson => Pearson(predicted, gold),
        TaskMetric.Spearman => Spearman(predicted, gold),
        _ => throw new ArgumentException($"{metric.Name()} is a classification metric; pass int predictions"),
    };

    /// <summary>Every metric of a classification task on predictions for <paramref name="gold"/>'s examples.</summary>
    public static IReadOnlyDictionary<string, double> Evaluate(ClassificationTask task, ReadOnlySpan<int> predicted, IReadOnlyList<TaskExample> gold)
    {
        if (task.IsRegression) throw new ArgumentException($"task '{task.Name}' is a regression task; pass float predictions");
        var labels = new int[gold.Count];
        for (int i = 0; i < labels.Length; i++) labels[i] = gold[i].Label;
        var result = new Dictionary<string, double>();
        foreach (var m in task.Metrics) result[m.Name()] = Compute(m, predicted, labels);
        return result;
    }

    public static IReadOnlyDictionary<string, double> Evaluate(ClassificationTask task, ReadOnlySpan<float> predicted, IReadOnlyList<TaskExample> gold)
    {
        if (!task.IsRegression) throw new ArgumentException($"task '{task.Name}' is a classification task; pass int predictions");
        var targets = new float[gold.Count];
        for (int i = 0; i < targets.Length; i++) targets[i] = gold[i].Target;
        var result = new Dictionary<string, double>();
        foreach (var m in task.Metrics) result[m.Name()] = Compute(m, predicted, targets);
        return result;
    }

    private static void CheckLengths(int predicted, int gold)
    {
        if (predicted != gold) throw new ArgumentException($"{predicted} predictions for {gold} gold labels");
    }
}
