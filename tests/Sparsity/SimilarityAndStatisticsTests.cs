using NativeSparsity.Engine.Backends.Cpu;
using NativeSparsity.Engine.Sparsity;
using NativeSparsity.Tests.Engine;
using NUnit.Framework;
using static NativeSparsity.Tests.Sparsity.SparsityTestData;

namespace NativeSparsity.Tests.Sparsity;

public class SimilarityAndStatisticsTests
{
    private readonly CpuBackend _cpu = new();

    [Test]
    public void SimilarityOfHandMadeMasks()
    {
        byte[] a = { 1, 1, 0, 0, 1, 0, 1, 1 };
        byte[] b = { 1, 0, 0, 1, 7, 0, 0, 1 }; // any non-zero byte keeps
        var r = MaskSimilarity.Compare(a, b);
        Assert.That((r.KeptA, r.KeptB, r.KeptBoth), Is.EqualTo((5L, 4L, 3L)));
        Assert.That(r.Cosine, Is.EqualTo(3 / Math.Sqrt(20)).Within(1e-15));
        Assert.That(r.Jaccard, Is.EqualTo(0.5).Within(1e-15));
        Assert.That(r.Hamming, Is.EqualTo(3));
        Assert.That(r.HammingFraction, Is.EqualTo(3.0 / 8));
        double d1 = 5.0 / 8, d2 = 4.0 / 8;
        Assert.That(r.ChanceCosine, Is.EqualTo(Math.Sqrt(d1 * d2)).Within(1e-15));
        Assert.That(r.ChanceJaccard, Is.EqualTo(d1 * d2 / (d1 + d2 - d1 * d2)).Within(1e-15));
        Assert.That(r.ChanceHamming, Is.EqualTo(8 * (d1 + d2 - 2 * d1 * d2)).Within(1e-12));
        var same = MaskSimilarity.Compare(a, a);
        Assert.That((same.Cosine, same.Jaccard, same.Hamming), Is.EqualTo((1.0, 1.0, 0L)));
        var none = MaskSimilarity.Compare(new byte[3], new byte[3]);
        Assert.That(double.IsNaN(none.Cosine) && none.Jaccard == 1 && none.Hamming == 0);
    }

    [Test]
    public void VectorisedCountsMatchAPlainLoop()
    {
        var rng = new System.Random(TestUtil.FreshSeed());
        // Longer than one 255-vector byte block and one 2^20 chunk, with a ragged tail.
        foreach (int n in new[] { 1, 31, 8161, 1_048_577 + 45 })
        {
            var a = new byte[n];
            var b = new byte[n];
            for (int i = 0; i < n; i++) { a[i] = (byte)(rng.Next(3) == 0 ? 0 : rng.Next(1, 256)); b[i] = (byte)rng.Next(2); }
            var r = MaskSimilarity.Compare(a, b);
            long ca = a.Count(x => x != 0), cb = b.Count(x => x != 0), both = Enumerable.Range(0, n).Count(i => a[i] != 0 && b[i] != 0);
            Assert.That((r.KeptA, r.KeptB, r.KeptBoth), Is.EqualTo((ca, cb, both)), $"n {n}");
        }
    }

    [Test]
    public void ChanceLevelsMatchIndependentRandomMasks()
    {
        int seed = TestUtil.FreshSeed();
        var set = MakeSet(_cpu, new float[400_000], (400, 1000));
        var a = Masks.RandomGlobal(set, 0.3, (ulong)seed, 1);
        var b = Masks.RandomGlobal(set, 0.6, (ulong)seed, 2);
        var r = MaskSimilarity.Compare(a, b);
        // |A∩B| is hypergeometric with sd ~ 145 of 112,000: relative deviations far under 1%.
        Assert.That(r.Cosine, Is.EqualTo(r.ChanceCosine).Within(0.005));
        Assert.That(r.Jaccard, Is.EqualTo(r.ChanceJaccard).Within(0.005));
        Assert.That(r.Hamming, Is.EqualTo(r.ChanceHamming).Within(0.005 * r.ChanceHamming));
        var byMatrix = MaskSimilarity.CompareByMatrix(a, b);
        Assert.That(byMatrix.Single().Similarity, Is.EqualTo(r));
    }

    [Test]
    public void StatisticsMatchPlainCounts()
    {
        var rng = new System.Random(TestUtil.FreshSeed());
        var shapes = new[] { (50, 30), (7, 13), (300, 301) };
        int n = shapes.Sum(s => s.Item1 * s.Item2);
        var w = TestUtil.RandomNormals(rng, n, 0.02f);
        for (int i = 0; i < n; i += 11) w[i] = 0f;
        for (int i = 5; i < n; i += 17) w[i] = -0f;
        for (int i = 3; i < n; i += 23) w[i] *= 1e-4f;
        // Three matrices, the second in another layer.
        var matrices = new List<PrunableMatrix>
        {
            new("bert.encoder.layer.0.attention.self.query.weight", 0, 50, 30),
            new("bert.encoder.layer.1.output.dense.weight", 1500, 7, 13),
            new("bert.encoder.layer.0.intermediate.dense.weight", 1591, 300, 301),
        };
        var set = new PrunableSet(TestUtil.Upload(_cpu, w), matrices);
        var options = new SparsityStatisticsOptions { RelativeToStd = new[] { 0.01, 0.5 } };
        var report = SparsityStatistics.Compute(set, options);

        foreach (var m in matrices)
        {
            var x = w.AsSpan((int)m.Offset, (int)m.Count).ToArray();
            double mean = x.Average(v => (double)v), std = Math.Sqrt(x.Average(v => ((double)v - mean) * ((double)v - mean)));
            var mo = report.Moments.Single(r => r.Name == m.Name);
            Assert.That(mo.Mean, Is.EqualTo(mean).Within(1e-12));
            Assert.That(mo.Std, Is.EqualTo(std).Within(1e-9 * std + 1e-15));
            Assert.That(mo.Layer, Is.EqualTo(m.Layer));
            SparsityCountRow Row(string criterion, double factor, double threshold) =>
                report.Counts.Single(r => r.Scope == "matrix" && r.Name == m.Name && r.Criterion == criterion && r.Factor == factor
                                          && (criterion == "exact_zero" || r.Threshold == threshold));
            Assert.That(Row("exact_zero", 0, 0).Count, Is.EqualTo(x.Count(v => v == 0)));
            foreach (double t in options.AbsoluteThresholds)
                Assert.That(Row("abs_below", 0, (float)t).Count, Is.EqualTo(x.Count(v => MathF.Abs(v) < (float)t)), $"{m.Name} < {t}");
            foreach (double f in options.RelativeToStd)
                Assert.That(Row("rel_std_below", f, (float)(f * mo.Std)).Count, Is.EqualTo(x.Count(v => MathF.Abs(v) < (float)(f * mo.Std))), $"{m.Name} < {f} std");

            var h = report.Histograms.Single(r => r.Name == m.Name);
            var expectedBins = new long[h.Counts.Length];
            foreach (float v in x)
            {
                float a = MathF.Abs(v);
                for (int b = 0; b < expectedBins.Length; b++)
                    if (a >= (float)h.Edges[b] && a < (float)h.Edges[b + 1]) expectedBins[b]++;
            }
            Assert.That(h.Counts, Is.EqualTo(expectedBins), m.Name);
            Assert.That(h.Zeros + h.Underflow + h.Overflow + h.Counts.Sum(), Is.EqualTo(m.Count));
            Assert.That(h.Edges[1] / h.Edges[0], Is.EqualTo(Math.Pow(10, 0.1)).Within(1e-6), "log-spaced, 10 per decade");
        }
        // Layer 0 sums matrices 0 and 2; the total sums all.
        var layer0 = report.Counts.Single(r => r.Scope == "layer" && r.Layer == 0 && r.Criterion == "exact_zero");
        var zeros = report.Counts.Where(r => r.Scope == "matrix" && r.Criterion == "exact_zero").ToArray();
        Assert.That(layer0.Count, Is.EqualTo(zeros[0].Count + zeros[2].Count));
        Assert.That(layer0.Total, Is.EqualTo(1500 + 300 * 301));
        var total = report.Counts.Single(r => r.Scope == "total" && r.Criterion == "exact_zero");
        Assert.That(total.Count, Is.EqualTo(w.Count(v => v == 0)));
        Assert.That(total.Fraction, Is.EqualTo((double)total.Count / n));
        Assert.That(report.Counts.Single(r => r.Scope == "total" && r.Criterion == "rel_std_below" && r.Factor == 0.5).Count,
            Is.EqualTo(report.Counts.Where(r => r.Scope == "matrix" && r.Criterion == "rel_std_below" && r.Factor == 0.5).Sum(r => r.Count)));
        Assert.That(report.GlobalThresholds, Is.EqualTo(GlobalMagnitudeThreshold.Sweep(set, GlobalMagnitudeThreshold.DefaultSweep)));
        Assert.That(report.Counts[0].ToCsv().Split(',').Length, Is.EqualTo(SparsityCountRow.CsvHeader.Split(',').Length));
    }
}
