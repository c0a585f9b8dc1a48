using NativeSparsity.Engine.Backends.Cpu;
using NativeSparsity.Engine.Sparsity;
using NativeSparsity.Tests.Engine;
using NUnit.Framework;
using static NativeSparsity.Tests.Sparsity.SparsityTestData;

namespace NativeSparsity.Tests.Sparsity;

public class MaskTests
{
    private readonly CpuBackend _cpu = new();

    [Test]
    public void PerMatrixMagnitudePrunesTheSameRatioInEveryMatrix()
    {
        var rng = new System.Random(TestUtil.FreshSeed());
        var shapes = new[] { (16, 16), (7, 13), (1, 1), (40, 64) };
        var w = Make("manyTies", rng, shapes.Sum(s => s.Item1 * s.Item2));
        // Scale matrices differently so a global threshold would not give per-matrix ratios.
        for (int i = 256; i < 256 + 91; i++) w[i] *= 100;
        var set = MakeSet(_cpu, w, shapes);
        foreach (double s in new[] { 0.0, 0.3, 0.5, 0.9 })
        {
            var mask = Masks.PerMatrixMagnitude(set, s);
            var keep = Bytes(mask);
            long[] pruned = mask.PrunedPerMatrix();
            for (int i = 0; i < set.Matrices.Count; i++)
            {
                var m = set.Matrices[i];
                long k = GlobalMagnitudeThreshold.PruneCount(s, m.Count);
                Assert.That(pruned[i], Is.EqualTo(k), $"{m.Name} at {s}");
                // Within the matrix the pruned ones are its k smallest by (|w|, index).
                var local = w.AsSpan((int)m.Offset, (int)m.Count).ToArray();
                Assert.That(keep.AsSpan((int)m.Offset, (int)m.Count).ToArray(), Is.EqualTo(ReferenceKeep(local, k)), $"{m.Name} at {s}");
            }
        }
    }

    [Test]
    public void RandomMasksHitTheRequestedCountsAndDependOnlyOnTheSeed()
    {
        int seed = TestUtil.FreshSeed();
        var rng = new System.Random(seed);
        var shapes = new[] { (100, 37), (1, 1), (64, 129) };
        var w = Make("normal", rng, shapes.Sum(s => s.Item1 * s.Item2));
        var set = MakeSet(_cpu, w, shapes);
        foreach (double s in new[] { 0.0, 0.2, 0.75 })
        {
            var a = Masks.RandomGlobal(set, s, (ulong)seed, 3);
            Assert.That(a.PrunedCount(), Is.EqualTo(GlobalMagnitudeThreshold.PruneCount(s, set.Count)), $"global random {s}");
            Assert.That(Bytes(Masks.RandomGlobal(set, s, (ulong)seed, 3)), Is.EqualTo(Bytes(a)), "same seed, same mask");
            if (s > 0) Assert.That(Bytes(Masks.RandomGlobal(set, s, (ulong)seed + 1, 3)), Is.Not.EqualTo(Bytes(a)), "another seed, another mask");
        }
        var magnitude = Masks.GlobalMagnitude(set, 0.6);
        var matched = Masks.RandomPerMatrix(magnitude, (ulong)seed);
        Assert.That(matched.PrunedPerMatrix(), Is.EqualTo(magnitude.PrunedPerMatrix()));
        Assert.That(Bytes(matched), Is.Not.EqualTo(Bytes(magnitude)));
        // Uniform positions: pruned fraction in each half of the big matrix is near 0.6 (binomial sd ~0.009).
        var keep = Bytes(Masks.RandomGlobal(set, 0.6, (ulong)seed));
        int half = keep.Length / 2;
        Assert.That(keep.Take(half).Count(b => b == 0) / (double)half, Is.EqualTo(0.6).Within(0.05));
        Assert.That(keep.Skip(half).Count(b => b == 0) / (double)(keep.Length - half), Is.EqualTo(0.6).Within(0.05));
    }

    [TestCase(1, 4)]
    [TestCase(2, 4)]
    [TestCase(2, 8)]
    [TestCase(4, 8)]
    [TestCase(3, 7)]
    [TestCase(5, 56)] // beyond the small-group path: sorted
    public void NMKeepsExactlyNLargestInEveryGroup(int n, int m)
    {
        var rng = new System.Random(TestUtil.FreshSeed());
        foreach (string kind in new[] { "normal", "manyTies" })
        {
            var shapes = new[] { (3, 2 * m * 4), (17, m), (1, 3 * 56) };
            var w = Make(kind, rng, shapes.Sum(s => s.Item1 * s.Item2));
            var set = MakeSet(_cpu, w, shapes); // 168 = 3 * 56 is a multiple of every M here
            var mask = Masks.NM(set, n, m);
            Assert.That(mask.RequestedSparsity, Is.EqualTo(1.0 - (double)n / m));
            var keep = Bytes(mask);
            foreach (var mat in set.Matrices)
                for (int r = 0; r < mat.Rows; r++)
                    for (int g = 0; g < mat.Cols; g += m)
                    {
                        int at = (int)(mat.Offset + (long)r * mat.Cols + g);
                        var idx = Enumerable.Range(at, m).ToArray();
                        var kept = idx.Where(i => keep[i] != 0).ToArray();
                        var dropped = idx.Where(i => keep[i] == 0).ToArray();
                        string where = $"{kind} {n}:{m} {mat.Name} row {r} group {g / m}";
                        Assert.That(kept.Length, Is.EqualTo(n), where);
                        float minKept = kept.Min(i => MathF.Abs(w[i])), maxDropped = dropped.Max(i => MathF.Abs(w[i]));
                        Assert.That(minKept, Is.GreaterThanOrEqualTo(maxDropped), where);
                        // Ties at the boundary: the dropped equal ones come before the kept equal ones.
                        int lastDroppedTie = dropped.Where(i => MathF.Abs(w[i]) == minKept).DefaultIfEmpty(-1).Max();
                        int firstKeptTie = kept.Where(i => MathF.Abs(w[i]) == minKept).Min();
                        Assert.That(lastDroppedTie, Is.LessThan(firstKeptTie), where + " ties by position");
                    }
        }
    }

    [Test]
    public void NMRejectsBadPatterns()
    {
        var set = MakeSet(_cpu, new float[2 * 12 + 3 * 8], (2, 12), (3, 8));
        Assert.That(Assert.Throws<ArgumentException>(() => Masks.NM(set, 2, 3))!.Message,
            Does.Contain("layer.1.attention.self.query.weight").And.Contain("8 input features"));
        Assert.Throws<ArgumentException>(() => Masks.NM(set, 4, 4));
        Assert.Throws<ArgumentException>(() => Masks.NM(set, 0, 4));
        Assert.Throws<ArgumentException>(() => Masks.NM(set, 1, 1));
        Assert.DoesNotThrow(() => Masks.NM(set, 1, 4));
    }

    [Test]
    public void ApplyingAMaskZeroesExactlyThePrunedWeights()
    {
        var rng = new System.Random(TestUtil.FreshSeed());
        foreach (int n in new[] { 1, 31, 33, 70_001, 200_003 })
        {
            var w = Make("normal", rng, n);
            var set = MakeSet(_cpu, w);
            var mask = Masks.RandomGlobal(set, 0.4, (ulong)rng.Next());
            mask.Apply(_cpu);
            var after = TestUtil.Download(set.Span);
            var keep = Bytes(mask);
            for (int i = 0; i < n; i++)
            {
                int expected = keep[i] != 0 ? BitConverter.SingleToInt32Bits(w[i]) : 0;
                if (BitConverter.SingleToInt32Bits(after[i]) != expected)
                    Assert.Fail($"n {n}, element {i}: keep {keep[i]}, before {w[i]}, after {after[i]}");
            }
        }
    }

    [Test]
    public void PrunableSetValidatesLayoutAndParsesLayers()
    {
        var span = TestUtil.Upload(_cpu, new float[10]);
        Assert.Throws<ArgumentException>(() => new PrunableSet(span, new[] { new PrunableMatrix("a", 0, 2, 2), new PrunableMatrix("b", 5, 1, 5) }));
        Assert.Throws<ArgumentException>(() => new PrunableSet(span, new[] { new PrunableMatrix("a", 0, 2, 2) }));
        var set = new PrunableSet(span, new[] { new PrunableMatrix("bert.encoder.layer.11.output.dense.weight", 0, 2, 2), new PrunableMatrix("cls.weight", 4, 2, 3) });
        Assert.That(set.Matrices.Select(m => m.Layer), Is.EqualTo(new[] { 11, -1 }));
        Assert.That(set.Describe(9), Does.StartWith("cls.weight[1, 2]"));
        Assert.That(new PrunableMatrix("x.sublayer.3.w", 0, 1, 1).Layer, Is.EqualTo(-1));
        var bert = PrunableSet.BertEncoderLayout(12, 768, 3072);
        Assert.That(bert.Sum(m => m.Count), Is.EqualTo(84_934_656));
        Assert.That(bert[4].Name, Is.EqualTo("bert.encoder.layer.0.intermediate.dense.weight"));
        Assert.That((bert[4].Rows, bert[4].Cols), Is.EqualTo((3072, 768)));
    }
}
