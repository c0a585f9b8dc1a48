namespace NativeSparsity.Experiments.Tasks;

/// <summary>
/// The floor a fine-tuned transformer must clear to have learned more than word identity: multinomial
/// Naive Bayes on word counts (Laplace smoothing, alpha 1), trained on a task's training split (exactly
/// the examples the fine-tuning sees) and scored with the task's main metric on another split. Pair
/// tasks use the words of both texts together. Words are maximal runs of letters and digits, lower-cased.
/// </summary>
public sealed class BagOfWordsBaseline
{
    private readonly Dictionary<string, int> _vocabulary = new(StringComparer.Ordinal);
    private readonly double[] _logPrior;
    private readonly double[][] _logLikelihood; // [label][word], the last slot for unseen words

    public BagOfWordsBaseline(IReadOnlyList<TaskExample> train, int numLabels)
    {
        if (numLabels < 2) throw new ArgumentException($"the bag-of-words baseline classifies; a task with {numLabels} label is a regression");
        if (train.Count == 0) throw new ArgumentException("the bag-of-words baseline needs at least one training example");
        var counts = new List<double[]>();
        var labelCounts = new double[numLabels];
        foreach (var e in train)
        {
            labelCounts[e.Label]++;
            foreach (string w in Words(e))
            {
                if (!_vocabulary.TryGetValue(w, out int id))
                {
                    id = _vocabulary.Count;
                    _vocabulary.Add(w, id);
                    counts.Add(new double[numLabels]);
                }
                counts[id][e.Label]++;
            }
        }
        int v = _vocabulary.Count;
        _logPrior = labelCounts.Select(c => Math.Log((c + 1) / (train.Count + numLabels))).ToArray();
        _logLikelihood = new double[numLabels][];
        for (int l = 0; l < numLabels; l++)
        {
            double total = 0;
            for (int w = 0; w < v; w++) total += counts[w][l];
            double denominator = Math.Log(total + v + 1); // + 1: the unseen-word slot
            var row = new double[v + 1];
            for (int w = 0; w < v; w++) row[w] = Math.Log(counts[w][l] + 1) - denominator;
            row[v] = -denominator;
            _logLikelihood[l] = row;
        }
    }

    public int VocabularySize => _vocabulary.Count;

    public int Predict(TaskExample example)
    {
        var score = (double[])_logPrior.Clone();
        foreach (string w in Words(example))
        {
            int id = _vocabulary.TryGetValue(w, out int known) ? known : _vocabulary.Count;
            for (int l = 0; l < score.Length; l++) score[l] += _logLikelihood[l][id];
        }
        int best = 0;
        for (int l = 1; l < score.Length; l++) if (score[l] > score[best]) best = l; // ties: the lowest label
        return best;
    }

    /// <summary>The task's main metric of the baseline trained on train and scored on <paramref name="split"/>; NaN for regression.</summary>
    public static double Score(ClassificationTask task, string split)
    {
        if (task.IsRegression) return double.NaN;
        var baseline = new BagOfWordsBaseline(task.Train, task.NumLabels);
        var examples = task.Split(split);
        var predicted = examples.Select(baseline.Predict).ToArray();
        var gold = examples.Select(e => e.Label).ToArray();
        return Metrics.Compute(task.MainMetric, predicted, gold);
    }

    public static IEnumerable<string> Words(TaskExample e) => Words(e.TextA).Concat(e.TextB is { } b ? Words(b) : []);

    public static IEnumerable<string> Words(string text)
    {
        int start = -1;
        for (int i = 0; i <= text.Length; i++)
        {
            bool word = i < text.Length && char.IsLetterOrDigit(text[i]);
            if (word && start < 0) start = i;
            else if (!word && start >= 0)
            {
                yield return text[start..i].ToLowerInvariant();
                start = -1;
            }
        }
    }
}
