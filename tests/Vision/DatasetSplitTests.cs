using NativeSparsity.Models.Vision;
using NativeSparsity.Tests.Engine;
using NUnit.Framework;

namespace NativeSparsity.Tests.Vision;

[TestFixture]
public class DatasetSplitTests
{
    private static int[] RandomLabels(System.Random rng, int n, int classes)
    {
        var labels = new int[n];
        // Uneven class sizes so the proportional allocation and its rounding are exercised.
        for (int i = 0; i < n; i++) labels[i] = Math.Min(classes - 1, (int)(classes * Math.Pow(rng.NextDouble(), 1.5)));
        return labels;
    }

    [Test]
    public void PermutationIsAPermutationAndDeterministic()
    {
        ulong seed = (ulong)TestUtil.FreshSeed();
        foreach (int n in new[] { 0, 1, 2, 17, 1000 })
        {
            var p = DatasetSplit.Permutation(n, seed, 3);
            Assert.That(p.Order(), Is.EqualTo(Enumerable.Range(0, n)));
            Assert.That(DatasetSplit.Permutation(n, seed, 3), Is.EqualTo(p));
        }
        Assert.That(DatasetSplit.Permutation(1000, seed, 3), Is.Not.EqualTo(DatasetSplit.Permutation(1000, seed, 4)));
    }

    [Test]
    public void StratifiedSplitIsDisjointCoveringStratifiedAndDeterministic()
    {
        int fresh = TestUtil.FreshSeed();
        var rng = new System.Random(fresh);
        int n = rng.Next(200, 900), classes = rng.Next(2, 11), validationSize = rng.Next(0, n + 1);
        var labels = RandomLabels(rng, n, classes);
        var (train, validation) = DatasetSplit.Stratified(labels, classes, validationSize, (ulong)fresh);

        Assert.That(validation, Has.Length.EqualTo(validationSize));
        Assert.That(train.Concat(validation).Order(), Is.EqualTo(Enumerable.Range(0, n)), "disjoint and covering");
        Assert.That(train, Is.Ordered.Ascending);
        Assert.That(validation, Is.Ordered.Ascending);
        for (int c = 0; c < classes; c++)
        {
            int total = labels.Count(y => y == c), inValidation = validation.Count(i => labels[i] == c);
            double share = (double)total * validationSize / n;
            Assert.That(inValidation, Is.InRange(Math.Floor(share), Math.Ceiling(share)), $"class {c}: {total} images");
        }
        var again = DatasetSplit.Stratified(labels, classes, validationSize, (ulong)fresh);
        Assert.That(again.Validation, Is.EqualTo(validation));
        if (validationSize > 10 && validationSize < n - 10)
            Assert.That(DatasetSplit.Stratified(labels, classes, validationSize, (ulong)fresh + 1).Validation, Is.Not.EqualTo(validation));
    }

    [Test]
    public void SubsamplePerClassTakesExactlyNFromEachClassOfTheGivenIndices()
    {
        int fresh = TestUtil.FreshSeed();
        var rng = new System.Random(fresh);
        var labels = new int[600];
        for (int i = 0; i < labels.Length; i++) labels[i] = i % 3;
        var (train, _) = DatasetSplit.Stratified(labels, 3, 150, (ulong)fresh);
        var sample = DatasetSplit.SubsamplePerClass(train, labels, 3, 40, (ulong)fresh);
        Assert.That(sample, Has.Length.EqualTo(120));
        Assert.That(sample, Is.Ordered.Ascending.And.Unique);
        Assert.That(sample.All(i => train.Contains(i)));
        for (int c = 0; c < 3; c++) Assert.That(sample.Count(i => labels[i] == c), Is.EqualTo(40));
        Assert.That(DatasetSplit.SubsamplePerClass(train, labels, 3, 40, (ulong)fresh), Is.EqualTo(sample));
        var ex = Assert.Throws<ArgumentException>(() => DatasetSplit.SubsamplePerClass(train, labels, 3, 151, 0));
        Assert.That(ex!.Message, Does.Contain("fewer than the 151"));
    }
}
