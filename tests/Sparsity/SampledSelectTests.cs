using NativeSparsity.Engine.Sparsity;
using NativeSparsity.Tests.Engine;
using NUnit.Framework;
using static NativeSparsity.Tests.Sparsity.SparsityTestData;

namespace NativeSparsity.Tests.Sparsity;

/// <summary>
/// The sampled single-pass select against the radix select (itself checked against sorting in
/// <see cref="GlobalMagnitudeThresholdTests"/>) and a sorted copy: same key, below and equal counts
/// for every rank, whether the sample's bounds hold or it falls back.
/// </summary>
public unsafe class SampledSelectTests
{
    private static RadixSelect.Selection[] Sampled(float[] w, long[] ranks, int sampleSize, out int fellBack)
    {
        fixed (float* p = w) return SampledSelect.Select((uint*)p, w.Length, ranks, i => $"element {i}", sampleSize, out fellBack);
    }

    private static RadixSelect.Selection[] Radix(float[] w, long[] ranks)
    {
        fixed (float* p = w) return RadixSelect.Select((uint*)p, w.Length, ranks, i => $"element {i}");
    }

    private static void CheckAgainstSort(float[] w, long[] ranks, RadixSelect.Selection[] got, string tag)
    {
        var sorted = SortedAbs(w);
        for (int j = 0; j < ranks.Length; j++)
        {
            float v = sorted[ranks[j]];
            Assert.That(BitConverter.Int32BitsToSingle((int)got[j].Key), Is.EqualTo(v), $"{tag}: rank {ranks[j]} key");
            Assert.That(got[j].Below, Is.EqualTo(sorted.LongCount(x => x < v)), $"{tag}: rank {ranks[j]} below");
            Assert.That(got[j].Equal, Is.EqualTo(sorted.LongCount(x => x == v)), $"{tag}: rank {ranks[j]} equal");
        }
    }

    private static long[] SomeRanks(System.Random rng, int n) =>
        new long[] { 0, n - 1, n / 2, n / 10, 9L * n / 10, rng.Next(n), rng.Next(n), n / 2 }.Select(r => Math.Clamp(r, 0, n - 1)).ToArray();

    [Test]
    public void EqualsRadixAndSortOnEveryDataKindAndSize([ValueSource(typeof(SparsityTestData), nameof(Kinds))] string kind)
    {
        var rng = new System.Random(TestUtil.FreshSeed());
        foreach (int n in new[] { 1, 2, 7, 33, 1000, 4099, 70_001 })
            foreach (int sample in new[] { 1, 16, 1024, SampledSelect.DefaultSampleSize })
            {
                var w = Make(kind, rng, n);
                var ranks = SomeRanks(rng, n);
                var got = Sampled(w, ranks, sample, out _);
                Assert.That(got, Is.EqualTo(Radix(w, ranks)), $"{kind}, n {n}, sample {sample}");
                if (n <= 4099) CheckAgainstSort(w, ranks, got, $"{kind}, n {n}, sample {sample}");
            }
    }

    [Test]
    public void ManyLevelsInOnePassOverSeveralChunks([Values("normal", "manyTies", "denormals")] string kind)
    {
        // Several 2^18-element chunks, a length no multiple of the vector width, a 19-level sweep.
        var rng = new System.Random(TestUtil.FreshSeed());
        int n = 600_001;
        var w = Make(kind, rng, n);
        var ranks = Enumerable.Range(0, 19).Select(j => (long)(n * (j + 0.5) / 19)).Append(0).Append(n - 1).ToArray();
        var radix = Radix(w, ranks);
        foreach (int threads in new[] { 1, 2, 3 })
            Assert.That(WithThreads(threads, () => Sampled(w, ranks, 4096, out _)), Is.EqualTo(radix), $"{kind}, {threads} threads");
    }

    [Test]
    public void NormalWeightsAreAnsweredByTheSampleWithoutFallback()
    {
        var rng = new System.Random(TestUtil.FreshSeed());
        var w = Make("normal", rng, 500_000);
        var ranks = GlobalMagnitudeThreshold.DefaultSweep.Select(s => (long)(s * w.Length)).ToArray();
        var got = Sampled(w, ranks, 1 << 14, out int fellBack);
        Assert.That(got, Is.EqualTo(Radix(w, ranks)));
        // Bounds are 4 standard deviations wide: a miss is a one-in-many-thousands event.
        Assert.That(fellBack, Is.Zero, "the sample's bounds should hold on plain normal weights");
    }

    [Test]
    public void HeavyTiesAreCountedAsPointsNotGathered([Values(0.0f, 0.5f)] float zeroFraction)
    {
        // A pruned checkpoint: a block of exact zeros, and levels inside and beyond it.
        var rng = new System.Random(TestUtil.FreshSeed());
        int n = 300_007;
        var w = Make("normal", rng, n);
        for (int i = 0; i < n * zeroFraction; i++) w[rng.Next(n)] = rng.Next(2) == 0 ? 0f : -0f;
        var ranks = GlobalMagnitudeThreshold.DefaultSweep.Select(s => (long)(s * n)).ToArray();
        Assert.That(Sampled(w, ranks, 8192, out _), Is.EqualTo(Radix(w, ranks)));
        var equal = Enumerable.Repeat(0.25f, n).Select((x, i) => i % 2 == 0 ? x : -x).ToArray();
        Assert.That(Sampled(equal, ranks, 8192, out int fellBack), Is.EqualTo(Radix(equal, ranks)));
        Assert.That(fellBack, Is.Zero, "an all-equal span is one counted point segment");
    }

    [Test]
    public void MisleadingSampleFallsBackToRadix()
    {
        var rng = new System.Random(TestUtil.FreshSeed());
        int n = 200_003, m = 1024;
        // Exactly the sampled positions hold the largest magnitudes, so every bound is too high.
        var w = Make("normal", rng, n);
        for (int j = 0; j < m; j++) w[(2L * j + 1) * n / (2L * m)] = 10f + rng.Next(1000);
        var ranks = new long[] { n / 2, n / 5 };
        Assert.That(Sampled(w, ranks, m, out int fellBack), Is.EqualTo(Radix(w, ranks)));
        Assert.That(fellBack, Is.EqualTo(2), "bounds from a misleading sample must be caught");

        // The sample spreads over [0, 1) while everything else crowds near 0.5: the candidates
        // outgrow the sample's prediction and the pass gives up.
        var crowd = Enumerable.Range(0, n).Select(i => 0.5f + 1e-7f * (i % 1000)).ToArray();
        for (int j = 0; j < m; j++) crowd[(2L * j + 1) * n / (2L * m)] = (float)rng.NextDouble();
        Assert.That(Sampled(crowd, ranks, m, out fellBack), Is.EqualTo(Radix(crowd, ranks)));
        Assert.That(fellBack, Is.EqualTo(2));
    }

    [Test]
    public void NonFiniteKeysGiveTheRadixErrorForTheLowestIndex([Values(true, false)] bool atSample)
    {
        var rng = new System.Random(TestUtil.FreshSeed());
        int n = 300_001, m = 4096;
        var w = Make("normal", rng, n);
        var sampled = Enumerable.Range(0, m).Select(j => (int)((2L * j + 1) * n / (2L * m))).ToHashSet();
        int first = atSample ? (int)((2L * 17 + 1) * n / (2L * m)) : 123_457;
        while (!atSample && sampled.Contains(first)) first++;
        w[first] = float.NaN;
        w[first + 70_000] = float.NegativeInfinity;
        w[n - 1] = float.PositiveInfinity;
        var ranks = new long[] { n / 2 };
        var radix = Assert.Throws<ArgumentException>(() => Radix(w, ranks))!;
        var error = Assert.Throws<ArgumentException>(() => Sampled(w, ranks, m, out _))!;
        Assert.That(error.Message, Is.EqualTo(radix.Message));
        Assert.That(error.Message, Does.Contain($"element {first}"));
    }
}
