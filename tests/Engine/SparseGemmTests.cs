using NativeSparsity.Engine.Backends.Cpu;
using NativeSparsity.Engine.Tensors;
using NUnit.Framework;

namespace NativeSparsity.Tests.Engine;

/// <summary>
/// The sparse forward product Y = X W^T + beta Y against a float64 reference, with GemmTests'
/// tolerance: |y - ref| &lt;= 1e-6 * sqrt(k + 1) * (sum_i |x_i w_i| + |beta y0|), which fails on any
/// dropped, doubled or misplaced kept weight.
/// </summary>
[TestFixture]
public sealed class SparseGemmTests
{
    private int _savedThreads;

    [SetUp]
    public void SetUp() => _savedThreads = CpuParallel.MaxThreads;

    [TearDown]
    public void TearDown()
    {
        CpuSparseGemm.ForcePortable = false;
        CpuSparseGemm.ForceAvx512 = false;
        CpuParallel.MaxThreads = _savedThreads;
    }

    private static readonly double[] Densities = { 1.0, 0.5, 0.1, 0.01, 0.0 };

    /// <summary>A [rows, cols] weight keeping each entry with probability density (the rest +0.0).</summary>
    private static float[] PrunedWeight(Random rng, int rows, int cols, double density)
    {
        var w = new float[rows * cols];
        for (int i = 0; i < w.Length; i++) w[i] = rng.NextDouble() < density ? (float)(rng.NextDouble() * 2 - 1) : 0f;
        return w;
    }

    private static float[] Run(CpuBackend cpu, int m, float[] x, int ldx, SparseRowMatrix w, float beta, float[] y0, int ldy)
    {
        var xt = TestUtil.Upload(cpu, x, x.Length);
        var yt = TestUtil.Upload(cpu, y0, y0.Length);
        try
        {
            cpu.SparseGemm(m, xt, ldx, w, beta, yt, ldy);
            return TestUtil.Download(yt);
        }
        finally
        {
            xt.Storage.Dispose();
            yt.Storage.Dispose();
        }
    }

    private static void Check(int m, int rows, int cols, double density, float beta, Random rng, string what)
    {
        int ldx = cols + rng.Next(0, 3), ldy = rows + rng.Next(0, 3);
        var x = TestUtil.RandomFloats(rng, Math.Max(1, (m - 1) * ldx + cols));
        var dense = PrunedWeight(rng, rows, cols, density);
        var w = SparseRowMatrix.FromDense(dense, rows, cols);
        var y0 = TestUtil.RandomFloats(rng, Math.Max(1, (m - 1) * ldy + rows));
        if (beta == 0f) Array.Fill(y0, float.NaN);   // beta = 0 must not read Y
        var y = Run(new CpuBackend(), m, x, ldx, w, beta, (float[])y0.Clone(), ldy);
        for (int t = 0; t < m; t++)
            for (int o = 0; o < rows; o++)
            {
                double exact = 0, magnitude = 0;
                for (int i = 0; i < cols; i++)
                {
                    double term = (double)x[t * ldx + i] * dense[o * cols + i];
                    exact += term;
                    magnitude += Math.Abs(term);
                }
                if (beta != 0f)
                {
                    exact += beta * (double)y0[t * ldy + o];
                    magnitude += Math.Abs(beta * (double)y0[t * ldy + o]);
                }
                double tol = 1e-6 * Math.Sqrt(cols + 1) * magnitude;
                float got = y[t * ldy + o];
                if (!(Math.Abs(got - exact) <= tol))
                    Assert.Fail($"{what}: Y[{t}, {o}] = {got}, reference {exact} (tolerance {tol})");
            }
        // Padding between rows of Y is left alone.
        for (int t = 0; t < m; t++)
            for (int o = rows; o < ldy && t * ldy + o < y.Length; o++)
                Assert.That(BitConverter.SingleToInt32Bits(y[t * ldy + o]), Is.EqualTo(BitConverter.SingleToInt32Bits(y0[t * ldy + o])), $"{what}: padding Y[{t}, {o}]");
    }

    [Test]
    public void MatchesFloat64ReferenceOnOddShapesAtEveryDensity([Values(false, true)] bool portable)
    {
        CpuSparseGemm.ForcePortable = portable;
        var rng = new Random(TestUtil.FreshSeed());
        var shapes = new (int m, int rows, int cols)[] { (1, 1, 1), (7, 5, 3), (16, 8, 8), (17, 13, 31), (33, 24, 40), (50, 9, 65), (3, 70, 17), (100, 33, 129) };
        foreach (var (m, rows, cols) in shapes)
            foreach (double d in Densities)
                foreach (float beta in new[] { 0f, 1f, 0.5f })
                    Check(m, rows, cols, d, beta, rng, $"m={m} W[{rows}, {cols}] density {d} beta {beta}{(portable ? " portable" : "")}");
    }

    [Test]
    public void Avx512KernelMatchesFloat64AndIsThreadIndependent()
    {
        CpuSparseGemm.ForceAvx512 = true;   // software Vector512 where the CPU lacks AVX-512
        var rng = new Random(TestUtil.FreshSeed());
        foreach (var (m, rows, cols) in new[] { (17, 13, 31), (33, 24, 40), (100, 33, 129) })
            foreach (double d in Densities)
                Check(m, rows, cols, d, 1f, rng, $"AVX-512 m={m} W[{rows}, {cols}] density {d}");
        int mm = 16 * 6 + 1;
        var x = TestUtil.RandomFloats(rng, mm * 50);
        var w = SparseRowMatrix.FromDense(PrunedWeight(rng, 30, 50, 0.4), 30, 50);
        var y0 = TestUtil.RandomFloats(rng, mm * 30);
        var one = Run(new CpuBackend(threads: 1), mm, x, 50, w, 1f, y0, 30);
        Bitwise.AssertEqual(Run(new CpuBackend(threads: 3), mm, x, 50, w, 1f, y0, 30), one, "AVX-512, 3 threads");
    }

    [Test]
    public void ResultIsBitwiseTheSameForAnyThreadCountAndKernel()
    {
        var rng = new Random(TestUtil.FreshSeed());
        int m = 16 * 9 + 5, rows = 40, cols = 72;
        var x = TestUtil.RandomFloats(rng, m * cols);
        foreach (double d in new[] { 0.5, 0.1 })
        {
            var w = SparseRowMatrix.FromDense(PrunedWeight(rng, rows, cols, d), rows, cols);
            var y0 = TestUtil.RandomFloats(rng, m * rows);
            var reference = Run(new CpuBackend(threads: 1), m, x, cols, w, 1f, y0, rows);
            foreach (int threads in new[] { 2, 3, 7 })
                Bitwise.AssertEqual(Run(new CpuBackend(threads: threads), m, x, cols, w, 1f, y0, rows), reference, $"{threads} threads, density {d}");
            CpuSparseGemm.ForcePortable = true;
            Bitwise.AssertEqual(Run(new CpuBackend(threads: 2), m, x, cols, w, 1f, y0, rows), reference, $"portable kernel, density {d}");
            CpuSparseGemm.ForcePortable = false;
        }
    }

    [Test]
    public void StorageKeepsExactlyTheNonZeroBits()
    {
        var rng = new Random(TestUtil.FreshSeed());
        var dense = PrunedWeight(rng, 11, 19, 0.3);
        dense[5] = -0f;
        var w = SparseRowMatrix.FromDense(dense, 11, 19);
        Assert.That(w.NonZeros, Is.EqualTo(dense.Count(v => BitConverter.SingleToInt32Bits(v) != 0)));
        Bitwise.AssertEqual(w.ToDense(), dense, "dense -> CSR -> dense");
        Assert.Throws<ArgumentException>(() => SparseRowMatrix.FromDense(dense, 10, 19));
        using var cpu = new CpuBackend();
        var x = cpu.Allocate(DType.F32, 4, 18);
        var y = cpu.Allocate(DType.F32, 4, 11);
        Assert.Throws<ArgumentException>(() => cpu.SparseGemm(4, x, 18, w, 0f, y, 11));   // ldx below W's 19 columns
    }

    // ---- fixed-mask fine-tuning: dX = dY W through W^T, dW at the kept positions ----

    [Test]
    public void InputGradientThroughTheTransposeMatchesFloat64([Values(false, true)] bool portable)
    {
        CpuSparseGemm.ForcePortable = portable;
        var rng = new Random(TestUtil.FreshSeed());
        foreach (var (m, rows, cols) in new[] { (1, 3, 2), (17, 13, 31), (40, 24, 9), (33, 70, 17) })
            foreach (double d in Densities)
            {
                var dense = PrunedWeight(rng, rows, cols, d);
                var wT = SparseRowMatrix.FromDense(dense, rows, cols).Transpose();
                Assert.That(wT.Rows, Is.EqualTo(cols));
                Bitwise.AssertEqual(wT.ToDense(), Transposed(dense, rows, cols), "W^T");
                var dy = TestUtil.RandomFloats(rng, m * rows);
                var dx0 = TestUtil.RandomFloats(rng, m * cols);
                var dx = Run(new CpuBackend(), m, dy, rows, wT, 1f, (float[])dx0.Clone(), cols);
                for (int t = 0; t < m; t++)
                    for (int i = 0; i < cols; i++)
                    {
                        double exact = dx0[t * cols + i], magnitude = Math.Abs(exact);
                        for (int o = 0; o < rows; o++)
                        {
                            double term = (double)dy[t * rows + o] * dense[o * cols + i];
                            exact += term;
                            magnitude += Math.Abs(term);
                        }
                        Assert.That(dx[t * cols + i], Is.EqualTo(exact).Within(1e-6 * Math.Sqrt(rows + 1) * magnitude), $"dX[{t}, {i}], density {d}");
                    }
            }
    }

    private static float[] Transposed(float[] a, int rows, int cols)
    {
        var t = new float[a.Length];
        for (int r = 0; r < rows; r++) for (int c = 0; c < cols; c++) t[c * rows + r] = a[r * cols + c];
        return t;
    }

    private static float[] RunSampled(CpuBackend cpu, int m, float[] dy, float[] x, SparseRowMatrix pattern, float beta, float[] dw0, int ldw)
    {
        var dyt = TestUtil.Upload(cpu, dy, dy.Length);
        var xt = TestUtil.Upload(cpu, x, x.Length);
        var dwt = TestUtil.Upload(cpu, dw0, dw0.Length);
        try
        {
            cpu.SparseGemmSampled(m, dyt, pattern.Rows, xt, pattern.Cols, pattern, beta, dwt, ldw);
            return TestUtil.Download(dwt);
        }
        finally
        {
            dyt.Storage.Dispose();
            xt.Storage.Dispose();
            dwt.Storage.Dispose();
        }
    }

    [Test]
    public void WeightGradientAtKeptPositionsMatchesFloat64AndLeavesThePrunedAlone([Values(false, true)] bool portable)
    {
        CpuSparseGemm.ForcePortable = portable;
        var rng = new Random(TestUtil.FreshSeed());
        foreach (var (m, rows, cols) in new[] { (1, 1, 1), (17, 13, 31), (64, 24, 9), (33, 300, 17), (5, 8, 40) })
            foreach (double d in Densities)
                foreach (float beta in new[] { 0f, 1f })
                {
                    var dense = PrunedWeight(rng, rows, cols, d);
                    var pattern = SparseRowMatrix.FromDense(dense, rows, cols);
                    var dy = TestUtil.RandomFloats(rng, m * rows);
                    var x = TestUtil.RandomFloats(rng, m * cols);
                    int ldw = cols + 1;
                    var dw0 = TestUtil.RandomFloats(rng, rows * ldw);
                    var dw = RunSampled(new CpuBackend(), m, dy, x, pattern, beta, dw0, ldw);
                    for (int o = 0; o < rows; o++)
                        for (int i = 0; i < ldw; i++)
                        {
                            bool kept = i < cols && BitConverter.SingleToInt32Bits(dense[o * cols + i]) != 0;
                            if (!kept)
                            {
                                Assert.That(BitConverter.SingleToInt32Bits(dw[o * ldw + i]), Is.EqualTo(BitConverter.SingleToInt32Bits(dw0[o * ldw + i])), $"pruned dW[{o}, {i}] changed");
                                continue;
                            }
                            double exact = beta * (double)dw0[o * ldw + i], magnitude = Math.Abs(exact);
                            for (int t = 0; t < m; t++)
                            {
                                double term = (double)dy[t * rows + o] * x[t * cols + i];
                                exact += term;
                                magnitude += Math.Abs(term);
                            }
                            Assert.That(dw[o * ldw + i], Is.EqualTo(exact).Within(1e-6 * Math.Sqrt(m + 1) * magnitude), $"dW[{o}, {i}], m={m} density {d} beta {beta}");
                        }
                }
    }

    [Test]
    public void WeightGradientIsBitwiseTheSameForAnyThreadCountAndKernel()
    {
        var rng = new Random(TestUtil.FreshSeed());
        int m = 16 * 7 + 3, rows = 600, cols = 48;
        var pattern = SparseRowMatrix.FromDense(PrunedWeight(rng, rows, cols, 0.3), rows, cols);
        var dy = TestUtil.RandomFloats(rng, m * rows);
        var x = TestUtil.RandomFloats(rng, m * cols);
        var dw0 = TestUtil.RandomFloats(rng, rows * cols);
        var reference = RunSampled(new CpuBackend(threads: 1), m, dy, x, pattern, 1f, dw0, cols);
        foreach (int threads in new[] { 2, 3 })
            Bitwise.AssertEqual(RunSampled(new CpuBackend(threads: threads), m, dy, x, pattern, 1f, dw0, cols), reference, $"{threads} threads");
        CpuSparseGemm.ForcePortable = true;
        Bitwise.AssertEqual(RunSampled(new CpuBackend(threads: 2), m, dy, x, pattern, 1f, dw0, cols), reference, "portable kernel");
    }

    [Test]
    public void RefreshValuesFollowsTheDenseWeightWithThePatternFixed()
    {
        var rng = new Random(TestUtil.FreshSeed());
        int rows = 9, cols = 14;
        var dense = PrunedWeight(rng, rows, cols, 0.4);
        var w = SparseRowMatrix.FromDense(dense, rows, cols);
        var wT = w.Transpose();
        var updated = dense.Select(v => v == 0f ? 0f : v * 3 - 1).ToArray();   // what an optimizer step under the mask does
        w.RefreshValues(updated);
        wT.RefreshValues(updated);
        Bitwise.AssertEqual(w.ToDense(), updated, "W after refresh");
        Bitwise.AssertEqual(wT.ToDense(), Transposed(updated, rows, cols), "W^T after refresh");
        Assert.Throws<ArgumentException>(() => w.RefreshValues(new float[rows * cols - 1]));
    }
}
