using NativeSparsity.Experiments.Tasks;
using NUnit.Framework;

namespace NativeSparsity.Tests.Tasks;

[TestFixture]
public class MetricsTests
{
    // pred vs gold: TP at 0 and 3, TN at 1, FP at 2, FN at 4.
    private static readonly int[] Pred = { 1, 0, 1, 1, 0 };
    private static readonly int[] Gold = { 1, 0, 0, 1, 1 };

    [Test]
    public void AccuracyCountsMatches() => Assert.That(Metrics.Accuracy(Pred, Gold), Is.EqualTo(0.6).Within(1e-12));

    [Test]
    public void F1OfClassOne()
    {
        // precision 2/3, recall 2/3 -> F1 = 2*2 / (2*2 + 1 + 1) = 2/3.
        Assert.That(Metrics.F1(Pred, Gold), Is.EqualTo(2.0 / 3).Within(1e-12));
        // Class 0 is not the positive class: swapping roles changes the value (TP 1, FP 1, FN 1 -> 0.5).
        Assert.That(Metrics.F1(Pred.Select(p => 1 - p).ToArray(), Gold.Select(g => 1 - g).ToArray()), Is.EqualTo(0.5).Within(1e-12));
        Assert.That(Metrics.F1(new[] { 0, 0 }, new[] { 0, 0 }), Is.EqualTo(0.0), "no positives at all gives 0 as scikit-learn");
    }

    [Test]
    public void MatthewsBinaryAndMulticlass()
    {
        // (TP*TN - FP*FN) / sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN)) = (2*1 - 1*1) / sqrt(3*3*2*2) = 1/6.
        Assert.That(Metrics.Matthews(Pred, Gold), Is.EqualTo(1.0 / 6).Within(1e-12));
        Assert.That(Metrics.Matthews(Gold, Gold), Is.EqualTo(1.0).Within(1e-12));
        Assert.That(Metrics.Matthews(Gold.Select(g => 1 - g).ToArray(), Gold), Is.EqualTo(-1.0).Within(1e-12));
        Assert.That(Metrics.Matthews(new[] { 1, 1, 1, 1 }, new[] { 0, 1, 0, 1 }), Is.EqualTo(0.0), "constant prediction");
        // Three classes: c = 5 correct of s = 6; predicted counts (2,1,3), true counts (2,2,2):
        // (5*6 - (4+2+6)) / sqrt((36 - (4+1+9)) * (36 - 12)) = 18 / sqrt(528).
        Assert.That(Metrics.Matthews(new[] { 0, 0, 1, 2, 2, 2 }, new[] { 0, 0, 1, 1, 2, 2 }), Is.EqualTo(18 / Math.Sqrt(528)).Within(1e-12));
    }

    [Test]
    public void PearsonByHand()
    {
        // dx = (-2,-1,0,1,2), dy = (-2,0,1,0,1): sxy 6, sxx 10, syy 6.
        float[] x = { 1, 2, 3, 4, 5 }, y = { 2, 4, 5, 4, 5 };
        Assert.That(Metrics.Pearson(x, y), Is.EqualTo(6 / Math.Sqrt(60)).Within(1e-12));
        Assert.That(Metrics.Pearson(x, x.Select(v => -3 * v + 1).ToArray()), Is.EqualTo(-1.0).Within(1e-12));
        Assert.That(Metrics.Pearson(x, new float[] { 2, 2, 2, 2, 2 }), Is.NaN, "constant series");
    }

    [Test]
    public void SpearmanAveragesTiedRanks()
    {
        float[] x = { 1, 2, 3, 4, 5 }, y = { 2, 4, 5, 4, 5 };
        Assert.That(Metrics.Ranks(y), Is.EqualTo(new[] { 1, 2.5, 4.5, 2.5, 4.5 }));
        Assert.That(Metrics.Ranks(new float[] { 3, 3, 3 }), Is.EqualTo(new[] { 2.0, 2.0, 2.0 }));
        // Ranks of y: dy = (-2,-0.5,1.5,-0.5,1.5): sxy 7, sxx 10, syy 9.
        Assert.That(Metrics.Spearman(x, y), Is.EqualTo(7 / Math.Sqrt(90)).Within(1e-12));
        // Monotone but not linear: rank correlation 1, Pearson below 1.
        var cubes = x.Select(v => v * v * v).ToArray();
        Assert.That(Metrics.Spearman(x, cubes), Is.EqualTo(1.0).Within(1e-12));
        Assert.That(Metrics.Pearson(x, cubes), Is.LessThan(0.99));
    }

    [Test]
    public void EvaluateUsesTheTaskMetricsAndChecksLengths()
    {
        var examples = Gold.Select(g => new TaskExample("a", null, g)).ToList();
        var task = new ClassificationTask("t", new[] { "no", "yes" }, new[] { TaskMetric.F1, TaskMetric.Accuracy }, false,
                                          new[] { new TaskSplit("train", examples), new TaskSplit("dev", examples) });
        var result = Metrics.Evaluate(task, Pred, task.Dev);
        Assert.That(result.Keys, Is.EqualTo(new[] { "f1", "accuracy" }));
        Assert.That(result["accuracy"], Is.EqualTo(0.6).Within(1e-12));
        Assert.Throws<ArgumentException>(() => Metrics.Accuracy(new[] { 1 }, new[] { 1, 0 }));
        Assert.Throws<ArgumentException>(() => Metrics.Evaluate(task, new float[5], task.Dev));
        Assert.That(Metrics.Accuracy(ReadOnlySpan<int>.Empty, ReadOnlySpan<int>.Empty), Is.NaN);
    }

    [Test]
    public void MajorityBaselineUsesTrainsMajority()
    {
        var train = new[] { 0, 0, 0, 1 }.Select(l => new TaskExample("a", null, l)).ToList();
        var dev = new[] { 1, 1, 0 }.Select(l => new TaskExample("a", null, l)).ToList();
        var task = new ClassificationTask("t", new[] { "no", "yes", "maybe" }, new[] { TaskMetric.Accuracy }, false,
                                          new[] { new TaskSplit("train", train), new TaskSplit("dev", dev) });
        var st = task.Statistics("dev");
        Assert.That(st.LabelCounts, Is.EqualTo(new[] { 1, 2, 0 }));
        Assert.That(st.MajorityLabel, Is.EqualTo(0));
        Assert.That(st.MajorityBaseline, Is.EqualTo(1.0 / 3).Within(1e-12));
        Assert.That(st.OwnMajorityFraction, Is.EqualTo(2.0 / 3).Within(1e-12));
        Assert.That(st.PresentLabels, Is.EqualTo(new[] { 0, 1 }));
        Assert.That(task.MajorityBaseline("train"), Is.EqualTo(0.75).Within(1e-12));
    }
}
