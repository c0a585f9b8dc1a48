using NativeSparsity.Experiments.Tasks;
using NativeSparsity.Tests.Engine;
using NUnit.Framework;

namespace NativeSparsity.Tests.Tasks;

public class BagOfWordsBaselineTests
{
    [Test]
    public void WordsAreLowerCasedRunsOfLettersAndDigits()
    {
        Assert.That(BagOfWordsBaseline.Words("The cat's 3 mats, co-op!").ToArray(),
            Is.EqualTo(new[] { "the", "cat", "s", "3", "mats", "co", "op" }));
        Assert.That(BagOfWordsBaseline.Words("").ToArray(), Is.Empty);
        Assert.That(BagOfWordsBaseline.Words(new TaskExample("a b", "C", 0)).ToArray(), Is.EqualTo(new[] { "a", "b", "c" }));
    }

    /// <summary>Predictions equal an independent float64 evaluation of the Naive Bayes posterior, written out here.</summary>
    [Test]
    public void PredictionsEqualTheFormulaOnRandomData()
    {
        int seed = TestUtil.FreshSeed();
        var rng = new Random(seed);
        string[] words = Enumerable.Range(0, 40).Select(i => $"w{i}").ToArray();
        int labels = 5;
        TaskExample Make() => new(string.Join(" ", Enumerable.Range(0, rng.Next(1, 9)).Select(_ => words[rng.Next(words.Length)])), null, rng.Next(labels));
        var train = Enumerable.Range(0, 60).Select(_ => Make()).ToList();
        var test = Enumerable.Range(0, 50).Select(_ => Make()).Append(new TaskExample("unseen words only", null, 0)).ToList();
        var nb = new BagOfWordsBaseline(train, labels);

        var vocab = train.SelectMany(e => e.TextA.Split(' ')).Distinct().ToList();
        foreach (var e in test)
        {
            var score = new double[labels];
            for (int l = 0; l < labels; l++)
            {
                var ofLabel = train.Where(t => t.Label == l).ToList();
                score[l] = Math.Log((ofLabel.Count + 1.0) / (train.Count + labels));
                var tokens = ofLabel.SelectMany(t => t.TextA.Split(' ')).ToList();
                foreach (string w in e.TextA.Split(' '))
                    score[l] += Math.Log((tokens.Count(t => t == w) + 1.0) / (tokens.Count + vocab.Count + 1));
            }
            int expected = Array.IndexOf(score, score.Max());
            Assert.That(nb.Predict(e), Is.EqualTo(expected), $"seed {seed}: '{e.TextA}' scores {string.Join(", ", score)}");
        }
    }

    [Test]
    public void LearnsAKeywordTaskAndStaysAtChanceOnRandomLabels()
    {
        int seed = TestUtil.FreshSeed();
        var rng = new Random(seed);
        string[] keys = { "alpha", "beta", "gamma" };
        string Filler() => string.Join(" ", Enumerable.Range(0, 6).Select(_ => $"f{rng.Next(200)}"));
        List<TaskExample> Split(int n, bool random) => Enumerable.Range(0, n).Select(_ =>
        {
            int label = rng.Next(3);
            return new TaskExample($"{Filler()} {keys[label]} {Filler()}", null, random ? rng.Next(3) : label);
        }).ToList();
        var task = new ClassificationTask("keyword", keys, new[] { TaskMetric.Accuracy }, false,
            new[] { new TaskSplit("train", Split(600, false)), new TaskSplit("dev", Split(300, false)) });
        Assert.That(BagOfWordsBaseline.Score(task, "dev"), Is.GreaterThan(0.95), $"seed {seed}");
        var noise = new ClassificationTask("noise", keys, new[] { TaskMetric.Accuracy }, false,
            new[] { new TaskSplit("train", Split(600, true)), new TaskSplit("dev", Split(600, true)) });
        Assert.That(BagOfWordsBaseline.Score(noise, "dev"), Is.InRange(0.2, 0.47), $"seed {seed}: chance is 1/3");
    }

    [Test]
    public void PairTasksUseBothTextsAndRegressionHasNone()
    {
        var train = new[] { new TaskExample("x", "good", 1), new TaskExample("x", "bad", 0), new TaskExample("y", "good", 1), new TaskExample("y", "bad", 0) };
        var task = new ClassificationTask("pair", new[] { "no", "yes" }, new[] { TaskMetric.Accuracy }, true,
            new[] { new TaskSplit("train", train), new TaskSplit("dev", new[] { new TaskExample("z", "good", 1), new TaskExample("z", "bad", 0) }) });
        Assert.That(BagOfWordsBaseline.Score(task, "dev"), Is.EqualTo(1.0), "the label lives in the second text");
        var regression = new ClassificationTask("sts", new[] { "score" }, new[] { TaskMetric.Pearson }, false,
            new[] { new TaskSplit("train", new[] { new TaskExample("a", null, 0, 1f) }) });
        Assert.That(BagOfWordsBaseline.Score(regression, "train"), Is.NaN);
    }
}
