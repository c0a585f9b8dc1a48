using NativeSparsity.Engine.Backends.Cpu;
using NativeSparsity.Engine.Sparsity;
using NativeSparsity.Tests.Engine;
using NUnit.Framework;
using static NativeSparsity.Tests.Sparsity.SparsityTestData;

namespace NativeSparsity.Tests.Sparsity;

public class GlobalMagnitudeThresholdTests
{
    private readonly CpuBackend _cpu = new();

    /// <summary>Checks the threshold against a sorted copy and the mask against the definition.</summary>
    private static void CheckCount(PrunableSet set, float[] w, float[] sorted, long k, string what, int[]? order = null)
    {
        var t = GlobalMagnitudeThreshold.SweepCounts(set, new[] { k })[0];
        string tag = $"{what}, n {w.Length}, k {k}";
        Assert.That(t.Pruned, Is.EqualTo(k), tag);
        float expected = sorted[Math.Max(k, 1) - 1];
        Assert.That(t.Threshold, Is.EqualTo(expected), $"{tag}: threshold");
        Assert.That(t.ThresholdBits >> 31, Is.Zero, $"{tag}: threshold is a magnitude (+0 never -0)");
        Assert.That(t.Below, Is.EqualTo(sorted.Count(x => x < expected)), $"{tag}: below");
        Assert.That(t.EqualCount, Is.EqualTo(sorted.Count(x => x == expected)), $"{tag}: equal");
        var keep = MaskSet.AllocateFor(set);
        GlobalMagnitudeThreshold.WriteKeepMask(set, t, keep);
        var got = keep.U8Span().ToArray();
        Assert.That(got.Count(b => b == 0), Is.EqualTo(k), $"{tag}: exactly k pruned");
        Assert.That(got, Is.EqualTo(ReferenceKeep(order ?? ReferenceOrder(w), k)), $"{tag}: pruned set is the first k of (|w|, index)");
    }

    [Test]
    public void ThresholdMatchesSortedCopyForEveryDataKind([Values("normal", "allEqual", "manyTies", "signedZeros", "denormals")] string kind)
    {
        var rng = new System.Random(TestUtil.FreshSeed());
        foreach (int n in new[] { 1, 7, 33, 1000, 4099 })
        {
            var w = Make(kind, rng, n);
            var set = MakeSet(_cpu, w);
            var sorted = SortedAbs(w);
            foreach (long k in new long[] { 0, 1, n / 3, n / 2, n - 1, n }.Distinct().Where(k => k >= 0))
                CheckCount(set, w, sorted, k, kind);
        }
    }

    [Test]
    public void LargeMultiChunkSpanAndSparsityRounding()
    {
        // Several radix chunks (2^18 each) and a length that is no multiple of the vector width.
        var rng = new System.Random(TestUtil.FreshSeed());
        var w = Make("normal", rng, 600_001);
        var set = MakeSet(_cpu, w, (1, 300_000), (7, 13), (299_910, 1));
        var sorted = SortedAbs(w);
        var order = ReferenceOrder(w);
        foreach (double s in new[] { 0.0, 0.1, 0.5, 0.9, 0.999999 })
        {
            long k = GlobalMagnitudeThreshold.PruneCount(s, w.Length);
            Assert.That(k, Is.EqualTo((long)Math.Round(s * w.Length, MidpointRounding.AwayFromZero)));
            CheckCount(set, w, sorted, k, $"s {s}", order);
        }
        // Rounding: 0.5 * 5 = 2.5 rounds away from zero; s near 1 on a tiny span prunes everything.
        Assert.That(GlobalMagnitudeThreshold.PruneCount(0.5, 5), Is.EqualTo(3));
        Assert.That(GlobalMagnitudeThreshold.PruneCount(0.9, 1), Is.EqualTo(1));
        Assert.Throws<ArgumentOutOfRangeException>(() => GlobalMagnitudeThreshold.PruneCount(1.0, 5));
        Assert.Throws<ArgumentOutOfRangeException>(() => GlobalMagnitudeThreshold.PruneCount(-0.1, 5));
    }

    [Test]
    public void MultiMatrixSpanWithOddShapes()
    {
        var rng = new System.Random(TestUtil.FreshSeed());
        var shapes = new[] { (1, 1), (7, 13), (3, 5), (64, 33), (5, 7) };
        int n = shapes.Sum(s => s.Item1 * s.Item2);
        var w = Make("manyTies", rng, n);
        var set = MakeSet(_cpu, w, shapes);
        var sorted = SortedAbs(w);
        for (long k = 0; k <= n; k += 97) CheckCount(set, w, sorted, k, "multi-matrix");
        CheckCount(set, w, sorted, n, "multi-matrix");
    }

    [Test]
    public void TiesArePrunedLowestIndexFirst()
    {
        var w = new float[] { 0.5f, -0.5f, 0.25f, 0.5f, -0.25f, 0.5f, 1f, 0.5f };
        var set = MakeSet(_cpu, w);
        // Two 0.25s, then the 0.5s at 0, 1, 3, 5, 7 in that order.
        var t = GlobalMagnitudeThreshold.SweepCounts(set, new long[] { 4 })[0];
        Assert.That((t.Threshold, t.Below, t.EqualCount, t.TiesPruned), Is.EqualTo((0.5f, 2L, 5L, 2L)));
        var keep = MaskSet.AllocateFor(set);
        GlobalMagnitudeThreshold.WriteKeepMask(set, t, keep);
        Assert.That(keep.U8Span().ToArray(), Is.EqualTo(new byte[] { 0, 0, 0, 1, 0, 1, 1, 1 }));
    }

    [Test]
    public void NonFiniteWeightsAreErrorsNamingMatrixAndIndex()
    {
        var rng = new System.Random(TestUtil.FreshSeed());
        var w = Make("normal", rng, 3 * 4 + 5 * 6);
        w[12 + 2 * 6 + 3] = float.PositiveInfinity; // second matrix, row 2, col 3
        w[12 + 4 * 6 + 1] = float.NaN;
        var set = MakeSet(_cpu, w, (3, 4), (5, 6));
        var e = Assert.Throws<ArgumentException>(() => GlobalMagnitudeThreshold.Compute(set, 0.5))!;
        Assert.That(e.Message, Does.Contain("bert.encoder.layer.1.attention.self.query.weight[2, 3]"));
        Assert.That(e.Message, Does.Contain("∞").Or.Contain("Infinity"));
        w[12 + 2 * 6 + 3] = 1f;
        w[0] = float.NegativeInfinity;
        set = MakeSet(_cpu, w, (3, 4), (5, 6));
        e = Assert.Throws<ArgumentException>(() => GlobalMagnitudeThreshold.Compute(set, 0.5))!;
        Assert.That(e.Message, Does.Contain("layer.0.attention.self.query.weight[0, 0]"));
        w[0] = 1f;
        set = MakeSet(_cpu, w, (3, 4), (5, 6));
        e = Assert.Throws<ArgumentException>(() => Masks.NM(set, 1, 2))!; // the 1:2 group at [4, 0..1] holds the NaN
        Assert.That(e.Message, Does.Contain("layer.1.attention.self.query.weight[4, 1]").And.Contain("NaN"));
    }

    [Test]
    public void SweepEqualsSingleSelectionsAndMasksAreNested([Values("normal", "manyTies")] string kind)
    {
        var rng = new System.Random(TestUtil.FreshSeed());
        var w = Make(kind, rng, 300_007);
        var set = MakeSet(_cpu, w, (300_000, 1), (7, 1));
        var levels = GlobalMagnitudeThreshold.DefaultSweep;
        var sweep = GlobalMagnitudeThreshold.Sweep(set, levels);
        for (int j = 0; j < levels.Count; j++)
            Assert.That(sweep[j], Is.EqualTo(GlobalMagnitudeThreshold.Compute(set, levels[j])), $"level {levels[j]}");
        var masks = Masks.GlobalMagnitudeSweep(set, levels);
        byte[]? previous = null;
        foreach (var mask in masks)
        {
            var keep = Bytes(mask);
            Assert.That(keep.LongCount(b => b == 0), Is.EqualTo(GlobalMagnitudeThreshold.PruneCount(mask.RequestedSparsity, w.Length)));
            if (previous != null)
                for (int i = 0; i < keep.Length; i++)
                    if (previous[i] == 0 && keep[i] != 0)
                        Assert.Fail($"{mask.Description}: weight {i} pruned at a lower sparsity is kept here");
            previous = keep;
        }
    }

    [Test]
    public void SweepOfMixedCountsIncludingNothingAndEverything([Values("allEqual", "signedZeros", "denormals")] string kind)
    {
        var rng = new System.Random(TestUtil.FreshSeed());
        int n = 5003;
        var w = Make(kind, rng, n);
        var set = MakeSet(_cpu, w);
        var sorted = SortedAbs(w);
        long[] counts = { n, 0, n / 2, 1, n / 2, n - 1, 0 };
        var sweep = GlobalMagnitudeThreshold.SweepCounts(set, counts);
        for (int j = 0; j < counts.Length; j++)
        {
            Assert.That(sweep[j], Is.EqualTo(GlobalMagnitudeThreshold.SweepCounts(set, new[] { counts[j] })[0]), $"count {counts[j]}");
            Assert.That(sweep[j].Threshold, Is.EqualTo(sorted[Math.Max(counts[j], 1) - 1]), $"count {counts[j]}");
        }
        Assert.Throws<ArgumentOutOfRangeException>(() => GlobalMagnitudeThreshold.SweepCounts(set, new long[] { n + 1 }));
    }

    [Test]
    public void OneThreadAndAllThreadsGiveTheSameMasks([Values("normal", "manyTies")] string kind)
    {
        var rng = new System.Random(TestUtil.FreshSeed());
        var w = Make(kind, rng, 700_001);
        var set = MakeSet(_cpu, w);
        byte[] Run() => Bytes(Masks.GlobalMagnitude(set, 0.37));
        var one = WithThreads(1, Run);
        var all = WithThreads(Math.Max(2, Environment.ProcessorCount), Run);
        Assert.That(all, Is.EqualTo(one));
    }
}
