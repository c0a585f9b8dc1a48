using NativeSparsity.Engine.Backends.Cpu;
using NativeSparsity.Engine.Tensors;
using NUnit.Framework;

namespace NativeSparsity.Tests.Engine;

/// <summary>
/// CPU GEMM against a float64 reference written out below. Tolerance, element by element:
/// |c - ref| &lt;= 1e-6 * sqrt(k + 1) * (|alpha| * sum_p |a_ip b_pj| + |beta c0_ij|). A float32 dot
/// product of length k accumulates rounding errors of size eps = 6e-8 times the partial sums; they
/// add up like a random walk, so the error grows like sqrt(k) * eps * sum |a b| with overwhelming
/// probability (Higham and Mary's probabilistic bound); 1e-6 is about 17 eps, a wide margin that
/// still fails on any dropped, doubled or misplaced term (each is ~1e-1 of sum |a b| or more).
/// </summary>
[TestFixture]
public sealed class GemmTests
{
    private static readonly int[] Sizes = { 1, 2, 3, 7, 13, 17, 31, 33, 63, 65, 127, 129, 257 };

    private CpuBackend _cpu = null!;
    private int _savedThreads;

    [SetUp]
    public void SetUp()
    {
        _savedThreads = CpuParallel.MaxThreads;
        _cpu = new CpuBackend();
    }

    [TearDown]
    public void TearDown()
    {
        CpuGemm.ForcedKernel = GemmKernelKind.Auto;
        CpuGemm.ForcedPath = CpuGemm.GemmPath.Auto;
        CpuParallel.MaxThreads = _savedThreads;
    }

    /// <summary>(m, n, k) triples: the size list rotated against itself, the diagonal, and deep K (several KC blocks).</summary>
    private static List<(int m, int n, int k)> Shapes(int maxSize)
    {
        var s = Sizes.Where(x => x <= maxSize).ToArray();
        var list = new List<(int, int, int)>();
        for (int i = 0; i < s.Length; i++)
        {
            list.Add((s[i], s[i], s[i]));
            list.Add((s[i], s[(i + 5) % s.Length], s[(i + 9) % s.Length]));
            list.Add((s[(i + 3) % s.Length], s[i], s[(i + 7) % s.Length]));
        }
        list.Add((13, 37, 600));
        list.Add((maxSize >= 129 ? 70 : 9, 33, 513));
        return list;
    }

    private static readonly (float alpha, float beta)[] Scalars = { (1f, 0f), (-0.5f, 1f), (1.25f, -0.75f), (1f, 1f) };

    [TestCase("Avx2")]
    [TestCase("Avx512")]
    [TestCase("Portable")]
    public void PackedKernelMatchesFloat64(string kernelName)
    {
        var kernel = Enum.Parse<GemmKernelKind>(kernelName);
        if (!GemmMicroKernel.CanRun(kernel, out string reason)) Assert.Ignore(reason);
        if (kernel == GemmKernelKind.Avx512 && !System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated)
            TestContext.Out.WriteLine("Vector512 is not hardware accelerated here: the AVX-512 kernel runs in .NET's software emulation (checks correctness, not speed)");
        CpuGemm.ForcedKernel = kernel;
        CpuGemm.ForcedPath = CpuGemm.GemmPath.Packed;
        var rng = new Random(TestUtil.FreshSeed());
        int maxSize = kernel == GemmKernelKind.Avx512 && !System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated ? 129 : 257;
        int caseIndex = 0;
        foreach (var (m, n, k) in Shapes(maxSize))
            foreach (bool ta in new[] { false, true })
                foreach (bool tb in new[] { false, true })
                {
                    var (alpha, beta) = Scalars[caseIndex++ % Scalars.Length];
                    CheckOne(rng, ta, tb, m, n, k, alpha, beta, padded: caseIndex % 3 == 0, $"{kernelName} ");
                }
    }

    [Test]
    public void DirectPathMatchesFloat64()
    {
        CpuGemm.ForcedPath = CpuGemm.GemmPath.Direct;
        var rng = new Random(TestUtil.FreshSeed());
        int caseIndex = 0;
        foreach (var (m, n, k) in Shapes(33))
            foreach (bool ta in new[] { false, true })
                foreach (bool tb in new[] { false, true })
                {
                    var (alpha, beta) = Scalars[caseIndex++ % Scalars.Length];
                    CheckOne(rng, ta, tb, m, n, k, alpha, beta, padded: caseIndex % 2 == 0, "direct ");
                }
    }

    [Test]
    public void AutomaticPathMatchesFloat64OnMixedShapes()
    {
        var rng = new Random(TestUtil.FreshSeed());
        var shapes = new[] { (1, 1, 1), (7, 13, 5), (1, 300, 64), (300, 1, 64), (64, 64, 1), (40, 30, 20), (200, 150, 300), (6, 16, 256) };
        int caseIndex = 0;
        foreach (var (m, n, k) in shapes)
            foreach (bool ta in new[] { false, true })
                foreach (bool tb in new[] { false, true })
                {
                    var (alpha, beta) = Scalars[caseIndex++ % Scalars.Length];
                    CheckOne(rng, ta, tb, m, n, k, alpha, beta, padded: caseIndex % 2 == 1, "auto ");
                }
    }

    [Test]
    public void BetaZeroIgnoresNaNAndAlphaZeroOrEmptyKOnlyScales()
    {
        foreach (var path in new[] { CpuGemm.GemmPath.Direct, CpuGemm.GemmPath.Packed })
        {
            CpuGemm.ForcedPath = path;
            var rng = new Random(TestUtil.FreshSeed());
            // beta = 0 over a C full of NaN: the old contents must not leak into the result.
            CheckOne(rng, false, true, 19, 23, 11, 1f, 0f, padded: true, $"{path} NaN C ", fillC: float.NaN);
            CheckOne(rng, true, false, 19, 23, 11, -0.5f, 0f, padded: false, $"{path} NaN C ", fillC: float.NaN);

            // alpha = 0: C = beta * C without touching A and B, even when they hold NaN.
            var a = TestUtil.Upload(_cpu, Enumerable.Repeat(float.NaN, 6).ToArray(), 2, 3);
            var b = TestUtil.Upload(_cpu, Enumerable.Repeat(float.NaN, 12).ToArray(), 3, 4);
            var c = TestUtil.Upload(_cpu, new float[] { 1, 2, 3, 4, 5, 6, 7, 8 }, 2, 4);
            _cpu.Gemm(false, false, 2, 4, 3, 0f, a, 3, b, 4, 2f, c, 4);
            Assert.That(TestUtil.Download(c), Is.EqualTo(new float[] { 2, 4, 6, 8, 10, 12, 14, 16 }), $"{path}: alpha = 0 scales C by beta");
            var cn = TestUtil.Upload(_cpu, Enumerable.Repeat(float.NaN, 8).ToArray(), 2, 4);
            _cpu.Gemm(false, false, 2, 4, 0, 1f, a, 1, b, 4, 0f, cn, 4);
            Assert.That(TestUtil.Download(cn), Is.All.EqualTo(0f), $"{path}: k = 0 with beta = 0 zeroes C");
        }
    }

    [TestCase(1)]
    [TestCase(5)]
    public void StridedBatchedMatchesFloat64(int batch)
    {
        var rng = new Random(TestUtil.FreshSeed());
        var shapes = new[] { (17, 9, 33, false, true), (64, 48, 32, false, false), (33, 65, 20, true, false), (5, 7, 3, true, true), (129, 130, 64, false, true) };
        foreach (var (m, n, k, ta, tb) in shapes)
            foreach (bool shareB in new[] { false, true })
                CheckBatched(rng, batch, ta, tb, m, n, k, -0.5f, shareB ? 0f : 1f, shareB);
    }

    [Test]
    public void AttentionShapedBatchesRunOneMatrixPerThreadAndMatch()
    {
        var rng = new Random(TestUtil.FreshSeed());
        CheckBatched(rng, 6, false, true, 128, 128, 64, 0.125f, 0f, shareB: false);   // scores = Q K^T
        CheckBatched(rng, 6, false, false, 128, 64, 128, 1f, 0f, shareB: false);      // context = P V
    }

    [Test]
    public void DirectAndPackedPathsGiveTheSameBits()
    {
        // The size threshold between the two paths is a speed choice only if they agree exactly.
        var rng = new Random(TestUtil.FreshSeed());
        var shapes = new[] { (20, 32, 20), (24, 24, 32), (8, 32, 8), (12, 12, 32), (17, 5, 33), (1, 1, 1), (31, 29, 7) };
        foreach (var kernel in new[] { GemmKernelKind.Auto, GemmKernelKind.Portable })
            foreach (var (m, n, k) in shapes)
                foreach (bool ta in new[] { false, true })
                    foreach (bool tb in new[] { false, true })
                    {
                        CpuGemm.ForcedKernel = kernel;
                        var a = TestUtil.RandomFloats(rng, m * k);
                        var b = TestUtil.RandomFloats(rng, k * n);
                        var c0 = TestUtil.RandomFloats(rng, m * n);
                        float[] Run(CpuGemm.GemmPath path)
                        {
                            CpuGemm.ForcedPath = path;
                            var tc = TestUtil.Upload(_cpu, c0);
                            _cpu.Gemm(ta, tb, m, n, k, 0.75f, TestUtil.Upload(_cpu, a), ta ? m : k, TestUtil.Upload(_cpu, b), tb ? k : n, 0.5f, tc, n);
                            return TestUtil.Download(tc);
                        }
                        var direct = Run(CpuGemm.GemmPath.Direct);
                        var packed = Run(CpuGemm.GemmPath.Packed);
                        Assert.That(packed.AsSpan().SequenceEqual(direct), Is.True, $"{kernel} {m}x{n}x{k} ta={ta} tb={tb}");
                    }
    }

    [Test]
    public void ResultsAreBitwiseIdenticalForAnyThreadCount()
    {
        var rng = new Random(TestUtil.FreshSeed());
        var shapes = new[] { (300, 200, 600), (131, 517, 300), (1000, 40, 70), (24, 700, 530) };
        foreach (var kernel in new[] { GemmKernelKind.Auto, GemmKernelKind.Portable })
            foreach (var (m, n, k) in shapes)
                foreach (bool ta in new[] { false, true })
                    foreach (bool tb in new[] { false, true })
                    {
                        CpuGemm.ForcedKernel = kernel;
                        var a = TestUtil.RandomFloats(rng, m * k);
                        var b = TestUtil.RandomFloats(rng, k * n);
                        var c0 = TestUtil.RandomFloats(rng, m * n);
                        float[]? first = null;
                        foreach (int threads in new[] { 1, Environment.ProcessorCount, 3, 7 })
                        {
                            var single = threads == 1 ? new CpuBackend(threads: 1) : _cpu;
                            CpuParallel.MaxThreads = threads;   // the constructor sets it; pin it for this run
                            var ta_ = TestUtil.Upload(_cpu, a);
                            var tb_ = TestUtil.Upload(_cpu, b);
                            var tc = TestUtil.Upload(_cpu, c0);
                            single.Gemm(ta, tb, m, n, k, 0.75f, ta_, ta ? m : k, tb_, tb ? k : n, 0.5f, tc, n);
                            var got = TestUtil.Download(tc);
                            if (first == null) first = got;
                            else if (!got.AsSpan().SequenceEqual(first))
                                Assert.Fail($"{kernel} {m}x{n}x{k} ta={ta} tb={tb}: {threads} threads differ from 1 thread");
                        }
                    }

        // Deep and wide enough (k * n > 4M floats) that the threaded path packs op(B) in two column panels.
        foreach (bool t in new[] { false, true })
        {
            const int m1 = 40, n1 = 2100, k1 = 2050;
            var a = TestUtil.RandomFloats(rng, m1 * k1);
            var b = TestUtil.RandomFloats(rng, k1 * n1);
            float[]? first = null;
            foreach (int threads in new[] { 1, Environment.ProcessorCount, 3 })
            {
                CpuParallel.MaxThreads = threads;
                var tc = _cpu.Allocate(DType.F32, m1 * n1);
                _cpu.Gemm(t, t, m1, n1, k1, 1f, TestUtil.Upload(_cpu, a), t ? m1 : k1, TestUtil.Upload(_cpu, b), t ? k1 : n1, 0f, tc, n1);
                var got = TestUtil.Download(tc);
                if (first == null) first = got;
                else Assert.That(got.AsSpan().SequenceEqual(first), Is.True, $"{m1}x{n1}x{k1} trans={t}: {threads} threads differ from 1 thread");
            }
        }

        // Batched: one-matrix-per-thread versus one thread doing all of them.
        const int batch = 8, m2 = 128, n2 = 96, k2 = 64;
        var qa = TestUtil.RandomFloats(rng, batch * m2 * k2);
        var qb = TestUtil.RandomFloats(rng, batch * n2 * k2);
        float[]? firstBatch = null;
        foreach (int threads in new[] { 1, Environment.ProcessorCount, 3 })
        {
            CpuParallel.MaxThreads = threads;
            var tc = _cpu.Allocate(DType.F32, batch * m2 * n2);
            _cpu.GemmStridedBatched(false, true, m2, n2, k2, 1f, TestUtil.Upload(_cpu, qa), k2, m2 * k2,
                                    TestUtil.Upload(_cpu, qb), k2, n2 * k2, 0f, tc, n2, m2 * n2, batch);
            var got = TestUtil.Download(tc);
            if (firstBatch == null) firstBatch = got;
            else Assert.That(got.AsSpan().SequenceEqual(firstBatch), Is.True, $"batched: {threads} threads differ from 1 thread");
        }
    }

    [Test]
    public void BadOperandsAreRejectedWithTheirNames()
    {
        var a = _cpu.Allocate(DType.F32, 4, 5);
        var b = _cpu.Allocate(DType.F32, 5, 6);
        var c = _cpu.Allocate(DType.F32, 4, 6);
        var ex = Assert.Throws<ArgumentException>(() => _cpu.Gemm(false, false, 4, 6, 5, 1f, a, 4, b, 6, 0f, c, 6));
        Assert.That(ex!.Message, Does.Contain("lda=4"));
        ex = Assert.Throws<ArgumentException>(() => _cpu.Gemm(false, false, 4, 7, 5, 1f, a, 5, b, 7, 0f, c, 7));
        Assert.That(ex!.Message, Does.Contain("b ("));
        ex = Assert.Throws<ArgumentException>(() => _cpu.Gemm(false, false, 4, 6, 5, 1f, a, 5, b, 6, 0f, _cpu.Allocate(DType.I32, 4, 6), 6));
        Assert.That(ex!.Message, Does.Contain("F32"));
        ex = Assert.Throws<ArgumentException>(() => _cpu.GemmStridedBatched(false, false, 4, 6, 5, 1f, a, 5, 0, b, 6, 0, 0f, c, 6, 10, 2));
        Assert.That(ex!.Message, Does.Contain("c ("));
    }

    // ---- helpers ----------------------------------------------------------------------------------

    /// <summary>
    /// One GEMM on freshly drawn operands. padded: leading dimensions exceed the minimum and the gaps
    /// hold NaN in A and B (so reading them would poison the result) and a sentinel in C (which must
    /// survive untouched).
    /// </summary>
    private void CheckOne(Random rng, bool ta, bool tb, int m, int n, int k, float alpha, float beta, bool padded, string label,
                          float? fillC = null)
    {
        int aRows = ta ? k : m, aCols = ta ? m : k, bRows = tb ? n : k, bCols = tb ? k : n;
        int lda = aCols + (padded ? 3 : 0), ldb = bCols + (padded ? 5 : 0), ldc = n + (padded ? 2 : 0);
        var a = Strided(rng, aRows, aCols, lda, float.NaN);
        var b = Strided(rng, bRows, bCols, ldb, float.NaN);
        var c = Strided(rng, m, n, ldc, 777f);
        if (fillC is float f)
            for (int i = 0; i < m; i++) Array.Fill(c, f, i * ldc, n);
        var (expect, scale) = Reference(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        var tc = TestUtil.Upload(_cpu, c);
        _cpu.Gemm(ta, tb, m, n, k, alpha, TestUtil.Upload(_cpu, a), lda, TestUtil.Upload(_cpu, b), ldb, beta, tc, ldc);
        Compare(TestUtil.Download(tc), c, expect, scale, m, n, ldc, k, $"{label}{m}x{n}x{k} ta={ta} tb={tb} alpha={alpha} beta={beta} lds=({lda},{ldb},{ldc})");
    }

    private void CheckBatched(Random rng, int batch, bool ta, bool tb, int m, int n, int k, float alpha, float beta, bool shareB)
    {
        int aRows = ta ? k : m, aCols = ta ? m : k, bRows = tb ? n : k, bCols = tb ? k : n;
        int lda = aCols + 1, ldb = bCols, ldc = n + 3;
        long strideA = (long)aRows * lda + 7, strideB = shareB ? 0 : (long)bRows * ldb, strideC = (long)m * ldc + 11;
        var a = Batched(rng, batch, aRows, aCols, lda, strideA, float.NaN);
        var b = Batched(rng, shareB ? 1 : batch, bRows, bCols, ldb, strideB, float.NaN);
        var c = Batched(rng, batch, m, n, ldc, strideC, 777f);
        var before = (float[])c.Clone();
        var tc = TestUtil.Upload(_cpu, c);
        _cpu.GemmStridedBatched(ta, tb, m, n, k, alpha, TestUtil.Upload(_cpu, a), lda, strideA, TestUtil.Upload(_cpu, b), ldb, strideB,
                                beta, tc, ldc, strideC, batch);
        var got = TestUtil.Download(tc);
        var touched = new bool[c.Length];
        for (int i = 0; i < batch; i++)
        {
            var (expect, scale) = Reference(ta, tb, m, n, k, alpha, a.AsSpan((int)(i * strideA)), lda, b.AsSpan((int)(i * strideB)), ldb,
                                            beta, before.AsSpan((int)(i * strideC)), ldc);
            int off = (int)(i * strideC);
            Compare(got.AsSpan(off, m * ldc - (ldc - n)), before.AsSpan(off), expect, scale, m, n, ldc, k,
                    $"batch {i}/{batch} {m}x{n}x{k} ta={ta} tb={tb} shareB={shareB}", checkPadding: false);
            for (int r = 0; r < m; r++) Array.Fill(touched, true, off + r * ldc, n);
        }
        for (int i = 0; i < c.Length; i++)
            if (!touched[i] && !(got[i] == before[i] || (float.IsNaN(got[i]) && float.IsNaN(before[i]))))
                Assert.Fail($"batched {m}x{n}x{k}: element {i} outside every C matrix changed from {before[i]} to {got[i]}");
    }

    /// <summary>count matrices rows x cols (row stride ld, matrix stride stride) of random values; <paramref name="gap"/> everywhere else.</summary>
    private static float[] Batched(Random rng, int count, int rows, int cols, int ld, long stride, float gap)
    {
        var x = new float[(count - 1) * stride + (long)rows * ld];
        Array.Fill(x, gap);
        for (int i = 0; i < count; i++)
            for (int r = 0; r < rows; r++)
                for (int j = 0; j < cols; j++)
                    x[i * stride + (long)r * ld + j] = (float)(rng.NextDouble() * 2 - 1);
        return x;
    }

    /// <summary>A rows x ld buffer: random values in the first cols of each row, <paramref name="gap"/> after them.</summary>
    private static float[] Strided(Random rng, int rows, int cols, int ld, float gap)
    {
        var x = new float[Math.Max(rows * ld, 1)];
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < ld; j++)
                x[i * ld + j] = j < cols ? (float)(rng.NextDouble() * 2 - 1) : gap;
        return x;
    }

    /// <summary>Float64 C = alpha op(A) op(B) + beta C0, and the per-element error scale |alpha| sum|ab| + |beta c0|.</summary>
    private static (double[] expect, double[] scale) Reference(bool ta, bool tb, int m, int n, int k, float alpha,
                                                               ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb,
                                                               float beta, ReadOnlySpan<float> c0, int ldc)
    {
        var expect = new double[m * n];
        var scale = new double[m * n];
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                double sum = 0, abs = 0;
                for (int p = 0; p < k; p++)
                {
                    double x = ta ? a[p * lda + i] : a[i * lda + p];
                    double y = tb ? b[j * ldb + p] : b[p * ldb + j];
                    sum += x * y;
                    abs += Math.Abs(x * y);
                }
                double old = beta == 0f ? 0 : beta * (double)c0[i * ldc + j];
                expect[i * n + j] = alpha * sum + old;
                scale[i * n + j] = Math.Abs(alpha) * abs + Math.Abs(old);
            }
        return (expect, scale);
    }

    private static void Compare(ReadOnlySpan<float> got, ReadOnlySpan<float> before, double[] expect, double[] scale,
                                int m, int n, int ldc, int k, string what, bool checkPadding = true)
    {
        double tol = 1e-6 * Math.Sqrt(k + 1);
        for (int i = 0; i < m; i++)
        {
            for (int j = 0; j < n; j++)
            {
                double e = expect[i * n + j], g = got[i * ldc + j];
                if (!(Math.Abs(g - e) <= tol * scale[i * n + j] + 1e-30))
                    Assert.Fail($"{what}: C[{i},{j}] = {g}, expected {e} (error {Math.Abs(g - e):g3}, allowed {tol * scale[i * n + j]:g3})");
            }
            if (checkPadding)
                for (int j = n; j < ldc && i * ldc + j < got.Length; j++)
                    if (got[i * ldc + j] != before[i * ldc + j])
                        Assert.Fail($"{what}: padding C[{i},{j}] beyond n changed from {before[i * ldc + j]} to {got[i * ldc + j]}");
        }
    }
}
