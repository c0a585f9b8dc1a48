using NativeSparsity.Engine.Backends.Cpu;
using NativeSparsity.Engine.Tensors;
using NUnit.Framework;

namespace NativeSparsity.Tests.Engine;

public class LayerNormTests
{
    private static readonly (int Rows, int Cols)[] Shapes = { (1, 1), (7, 13), (3, 1000), (5, 769), (130, 48) };
    private const float Eps = 1e-5f;

    /// <summary>The double reference forward: y, mean and rstd of a [rows, cols] x.</summary>
    private static (double[] Y, double[] Mean, double[] Rstd) Reference(
        double[] x, double[] gamma, double[] beta, int rows, int cols, double eps)
    {
        var y = new double[rows * cols];
        var mean = new double[rows];
        var rstd = new double[rows];
        for (int r = 0; r < rows; r++)
        {
            double m = 0;
            for (int c = 0; c < cols; c++) m += x[r * cols + c];
            m /= cols;
            double v = 0;
            for (int c = 0; c < cols; c++) v += (x[r * cols + c] - m) * (x[r * cols + c] - m);
            v /= cols;
            double rs = 1 / Math.Sqrt(v + eps);
            mean[r] = m; rstd[r] = rs;
            for (int c = 0; c < cols; c++) y[r * cols + c] = (x[r * cols + c] - m) * rs * gamma[c] + beta[c];
        }
        return (y, mean, rstd);
    }

    /// <summary>Analytic double gradients of L = sum(y * dy).</summary>
    private static (double[] Dx, double[] Dgamma, double[] Dbeta) ReferenceBackward(
        double[] x, double[] gamma, double[] dy, int rows, int cols, double eps)
    {
        var (_, mean, rstd) = Reference(x, gamma, new double[cols], rows, cols, eps);
        var dx = new double[rows * cols];
        var dgamma = new double[cols];
        var dbeta = new double[cols];
        for (int r = 0; r < rows; r++)
        {
            double sumG = 0, sumGX = 0;
            for (int c = 0; c < cols; c++)
            {
                int i = r * cols + c;
                double xhat = (x[i] - mean[r]) * rstd[r], g = dy[i] * gamma[c];
                sumG += g; sumGX += g * xhat;
                dgamma[c] += dy[i] * xhat;
                dbeta[c] += dy[i];
            }
            for (int c = 0; c < cols; c++)
            {
                int i = r * cols + c;
                double xhat = (x[i] - mean[r]) * rstd[r], g = dy[i] * gamma[c];
                dx[i] = rstd[r] * (g - sumG / cols - xhat * sumGX / cols);
            }
        }
        return (dx, dgamma, dbeta);
    }

    private static double[] D(float[] a) => a.Select(v => (double)v).ToArray();

    private static void AssertNear(float[] actual, double[] expected, double rtol, double atol, string what)
    {
        for (int i = 0; i < actual.Length; i++)
            if (!(Math.Abs(actual[i] - expected[i]) <= atol + rtol * Math.Abs(expected[i])))
                Assert.Fail($"{what}[{i}] is {actual[i]:r}, expected {expected[i]:r}");
    }

    [TestCaseSource(nameof(Shapes))]
    public void ForwardMatchesDoubleReference((int Rows, int Cols) shape)
    {
        var (rows, cols) = shape;
        var rng = new System.Random(TestUtil.FreshSeed());
        // A common offset per row, as in a residual stream, plus unit-scale variation.
        var x = TestUtil.RandomNormals(rng, rows * cols);
        for (int r = 0; r < rows; r++)
        {
            float offset = (float)(rng.NextDouble() * 10 - 5);
            for (int c = 0; c < cols; c++) x[r * cols + c] += offset;
        }
        var gamma = TestUtil.RandomNormals(rng, cols);
        var beta = TestUtil.RandomNormals(rng, cols);
        using var be = new CpuBackend();
        var ty = be.Allocate(DType.F32, rows, cols);
        var tm = be.Allocate(DType.F32, rows);
        var trs = be.Allocate(DType.F32, rows);
        be.LayerNormForward(TestUtil.Upload(be, x, rows, cols), TestUtil.Upload(be, gamma), TestUtil.Upload(be, beta),
                            ty, tm, trs, rows, cols, Eps);
        var (y, mean, rstd) = Reference(D(x), D(gamma), D(beta), rows, cols, Eps);
        AssertNear(TestUtil.Download(tm), mean, 1e-7, 1e-7, "mean");
        AssertNear(TestUtil.Download(trs), rstd, 2e-7, 0, "rstd");
        AssertNear(TestUtil.Download(ty), y, 1e-6, 2e-6, "y");
    }

    [Test]
    public void StatisticsSurviveALargeCommonOffset()
    {
        // Offset 300, spread 1: a one-pass E[x^2] - E[x]^2 in float loses about 3 digits of the
        // variance here; the two-pass double statistics must keep rstd to float precision.
        const int rows = 9, cols = 777;
        var rng = new System.Random(TestUtil.FreshSeed());
        var x = TestUtil.RandomNormals(rng, rows * cols).Select(v => v + 300f).ToArray();
        var gamma = Enumerable.Repeat(1f, cols).ToArray();
        var beta = new float[cols];
        using var be = new CpuBackend();
        var ty = be.Allocate(DType.F32, rows, cols);
        var tm = be.Allocate(DType.F32, rows);
        var trs = be.Allocate(DType.F32, rows);
        be.LayerNormForward(TestUtil.Upload(be, x), TestUtil.Upload(be, gamma), TestUtil.Upload(be, beta),
                            ty, tm, trs, rows, cols, Eps);
        var (y, mean, rstd) = Reference(D(x), D(gamma), D(beta), rows, cols, Eps);
        AssertNear(TestUtil.Download(trs), rstd, 2e-7, 0, "rstd");
        AssertNear(TestUtil.Download(tm), mean, 1e-7, 0, "mean");
        // The float mean is within half an ulp of 300 (3e-5) of the true one; y inherits that.
        AssertNear(TestUtil.Download(ty), y, 1e-6, 4e-5, "y");
    }

    [Test]
    public void ForwardInPlaceEqualsOutOfPlace()
    {
        const int rows = 5, cols = 769;
        var rng = new System.Random(TestUtil.FreshSeed());
        var x = TestUtil.RandomNormals(rng, rows * cols);
        using var be = new CpuBackend();
        var tx = TestUtil.Upload(be, x);
        var g = TestUtil.Upload(be, TestUtil.RandomNormals(rng, cols));
        var b = TestUtil.Upload(be, TestUtil.RandomNormals(rng, cols));
        var ty = be.Allocate(DType.F32, rows * cols);
        var m = be.Allocate(DType.F32, rows);
        var rs = be.Allocate(DType.F32, rows);
        be.LayerNormForward(tx, g, b, ty, m, rs, rows, cols, Eps);
        be.LayerNormForward(tx, g, b, tx, m, rs, rows, cols, Eps);
        Assert.That(TestUtil.Download(tx), Is.EqualTo(TestUtil.Download(ty)));
    }

    [TestCaseSource(nameof(Shapes))]
    public void AddLayerNormWritesSumAndNormalisesIt((int Rows, int Cols) shape)
    {
        var (rows, cols) = shape;
        var rng = new System.Random(TestUtil.FreshSeed());
        var a = TestUtil.RandomNormals(rng, rows * cols, 2f);
        var b = TestUtil.RandomNormals(rng, rows * cols);
        var gamma = TestUtil.RandomNormals(rng, cols);
        var beta = TestUtil.RandomNormals(rng, cols);
        using var be = new CpuBackend();
        var tsum = be.Allocate(DType.F32, rows, cols);
        var ty = be.Allocate(DType.F32, rows, cols);
        var tm = be.Allocate(DType.F32, rows);
        var trs = be.Allocate(DType.F32, rows);
        be.AddLayerNormForward(TestUtil.Upload(be, a), TestUtil.Upload(be, b), tsum, TestUtil.Upload(be, gamma),
                               TestUtil.Upload(be, beta), ty, tm, trs, rows, cols, Eps);
        var sum = a.Zip(b, (p, q) => p + q).ToArray();
        Assert.That(TestUtil.Download(tsum), Is.EqualTo(sum), "sum must be the float sum a + b");
        var (y, mean, rstd) = Reference(D(sum), D(gamma), D(beta), rows, cols, Eps);
        AssertNear(TestUtil.Download(tm), mean, 1e-7, 1e-7, "mean");
        AssertNear(TestUtil.Download(trs), rstd, 2e-7, 0, "rstd");
        AssertNear(TestUtil.Download(ty), y, 1e-6, 2e-6, "y");

        // The sum may overwrite a, and y may overwrite the sum, with the same results.
        var ta = TestUtil.Upload(be, a);
        be.AddLayerNormForward(ta, TestUtil.Upload(be, b), ta, TestUtil.Upload(be, gamma), TestUtil.Upload(be, beta),
                               ta, tm, trs, rows, cols, Eps);
        Assert.That(TestUtil.Download(ta), Is.EqualTo(TestUtil.Download(ty)), "in place");
    }

    [TestCaseSource(nameof(Shapes))]
    public void BackwardMatchesAnalyticAndFiniteDifferenceReferences((int Rows, int Cols) shape)
    {
        var (rows, cols) = shape;
        var rng = new System.Random(TestUtil.FreshSeed());
        var x = TestUtil.RandomNormals(rng, rows * cols).Select(v => v + 1.5f).ToArray();
        var gamma = TestUtil.RandomNormals(rng, cols);
        var beta = TestUtil.RandomNormals(rng, cols);
        var r = TestUtil.RandomNormals(rng, rows * cols); // dL/dy for L = sum(y * r)
        var dgamma0 = TestUtil.RandomNormals(rng, cols);
        var dbeta0 = TestUtil.RandomNormals(rng, cols);

        using var be = new CpuBackend();
        var tx = TestUtil.Upload(be, x);
        var tg = TestUtil.Upload(be, gamma);
        var ty = be.Allocate(DType.F32, rows * cols);
        var tm = be.Allocate(DType.F32, rows);
        var trs = be.Allocate(DType.F32, rows);
        be.LayerNormForward(tx, tg, TestUtil.Upload(be, beta), ty, tm, trs, rows, cols, Eps);
        var tdx = be.Allocate(DType.F32, rows * cols);
        var tdg = TestUtil.Upload(be, dgamma0);
        var tdb = TestUtil.Upload(be, dbeta0);
        be.LayerNormBackward(TestUtil.Upload(be, r), tx, tg, tm, trs, tdx, tdg, tdb, rows, cols);
        var dx = TestUtil.Download(tdx);
        var dgamma = TestUtil.Download(tdg).Select((v, c) => v - (double)dgamma0[c]).ToArray();
        var dbeta = TestUtil.Download(tdb).Select((v, c) => v - (double)dbeta0[c]).ToArray();

        double[] xd = D(x), gd = D(gamma), bd = D(beta), rd = D(r);
        var (rdx, rdg, rdb) = ReferenceBackward(xd, gd, rd, rows, cols, Eps);
        double scale = Math.Sqrt(rows); // column sums over rows grow like sqrt(rows)
        AssertNear(dx, rdx, 1e-5, 2e-5, "dx (analytic)");
        AssertNear(dgamma.Select(v => (float)v).ToArray(), rdg, 1e-5, 1e-5 * scale, "dgamma (analytic)");
        AssertNear(dbeta.Select(v => (float)v).ToArray(), rdb, 1e-5, 1e-5 * scale, "dbeta (analytic)");

        // Central differences of the double forward, on a sample of entries to bound the cost.
        double Loss(double[] xv, double[] gv, double[] bv)
        {
            var y = Reference(xv, gv, bv, rows, cols, Eps).Y;
            double l = 0;
            for (int i = 0; i < y.Length; i++) l += y[i] * rd[i];
            return l;
        }
        double Fd(double[] v, int i, Func<double> loss)
        {
            const double h = 1e-5;
            double keep = v[i];
            v[i] = keep + h; double up = loss();
            v[i] = keep - h; double down = loss();
            v[i] = keep;
            return (up - down) / (2 * h);
        }
        var xSample = Enumerable.Range(0, 40).Select(_ => rng.Next(rows * cols)).Distinct();
        foreach (int i in xSample)
        {
            double fd = Fd(xd, i, () => Loss(xd, gd, bd));
            Assert.That(rdx[i], Is.EqualTo(fd).Within(1e-6 * (1 + Math.Abs(fd))), $"reference dx[{i}] vs finite difference");
            Assert.That(dx[i], Is.EqualTo(fd).Within(2e-5 + 1e-5 * Math.Abs(fd)), $"dx[{i}] vs finite difference");
        }
        foreach (int c in Enumerable.Range(0, 24).Select(_ => rng.Next(cols)).Distinct())
        {
            double fdg = Fd(gd, c, () => Loss(xd, gd, bd));
            double fdb = Fd(bd, c, () => Loss(xd, gd, bd));
            Assert.That(rdg[c], Is.EqualTo(fdg).Within(1e-6 * (1 + Math.Abs(fdg))), $"reference dgamma[{c}] vs finite difference");
            Assert.That(rdb[c], Is.EqualTo(fdb).Within(1e-6 * (1 + Math.Abs(fdb))), $"reference dbeta[{c}] vs finite difference");
            Assert.That(dgamma[c], Is.EqualTo(fdg).Within(1e-5 * (scale + Math.Abs(fdg))), $"dgamma[{c}] vs finite difference");
            Assert.That(dbeta[c], Is.EqualTo(fdb).Within(1e-5 * (scale + Math.Abs(fdb))), $"dbeta[{c}] vs finite difference");
        }
    }

    [Test]
    public void BackwardMayOverwriteDyOrX()
    {
        const int rows = 5, cols = 769;
        var rng = new System.Random(TestUtil.FreshSeed());
        var x = TestUtil.RandomNormals(rng, rows * cols);
        var dy = TestUtil.RandomNormals(rng, rows * cols);
        var gamma = TestUtil.RandomNormals(rng, cols);
        using var be = new CpuBackend();
        var tg = TestUtil.Upload(be, gamma);
        var tm = be.Allocate(DType.F32, rows);
        var trs = be.Allocate(DType.F32, rows);
        be.LayerNormForward(TestUtil.Upload(be, x), tg, TestUtil.Upload(be, new float[cols]),
                            be.Allocate(DType.F32, rows * cols), tm, trs, rows, cols, Eps);

        (float[] Dx, float[] Dg, float[] Db) Run(bool intoDy, bool intoX)
        {
            var tx = TestUtil.Upload(be, x);
            var tdy = TestUtil.Upload(be, dy);
            var tdx = intoDy ? tdy : intoX ? tx : be.Allocate(DType.F32, rows * cols);
            var tdg = be.Allocate(DType.F32, cols);
            var tdb = be.Allocate(DType.F32, cols);
            be.LayerNormBackward(tdy, tx, tg, tm, trs, tdx, tdg, tdb, rows, cols);
            return (TestUtil.Download(tdx), TestUtil.Download(tdg), TestUtil.Download(tdb));
        }
        var separate = Run(false, false);
        foreach (var aliased in new[] { Run(true, false), Run(false, true) })
        {
            Assert.That(aliased.Dx, Is.EqualTo(separate.Dx));
            Assert.That(aliased.Dg, Is.EqualTo(separate.Dg));
            Assert.That(aliased.Db, Is.EqualTo(separate.Db));
        }
    }

    [Test]
    public void ParameterGradientsAreBitwiseIndependentOfThreadCount()
    {
        const int rows = 700, cols = 100;
        var rng = new System.Random(TestUtil.FreshSeed());
        var x = TestUtil.RandomNormals(rng, rows * cols);
        var dy = TestUtil.RandomNormals(rng, rows * cols);
        var gamma = TestUtil.RandomNormals(rng, cols);
        float[][] Run(int threads)
        {
            using var be = new CpuBackend(threads);
            var tx = TestUtil.Upload(be, x);
            var tg = TestUtil.Upload(be, gamma);
            var tm = be.Allocate(DType.F32, rows);
            var trs = be.Allocate(DType.F32, rows);
            be.LayerNormForward(tx, tg, be.Allocate(DType.F32, cols), be.Allocate(DType.F32, rows * cols), tm, trs, rows, cols, Eps);
            var tdx = be.Allocate(DType.F32, rows * cols);
            var tdg = be.Allocate(DType.F32, cols);
            var tdb = be.Allocate(DType.F32, cols);
            be.LayerNormBackward(TestUtil.Upload(be, dy), tx, tg, tm, trs, tdx, tdg, tdb, rows, cols);
            return new[] { TestUtil.Download(tdx), TestUtil.Download(tdg), TestUtil.Download(tdb) };
        }
        try
        {
            var one = Run(1);
            foreach (int threads in new[] { Environment.ProcessorCount, 3 })
            {
                var many = Run(threads);
                for (int k = 0; k < 3; k++) Assert.That(many[k], Is.EqualTo(one[k]), $"output {k} with {threads} threads");
            }
        }
        finally { using var restore = new CpuBackend(); }
    }

    [Test]
    public void BadArgumentsNameTheTensor()
    {
        using var be = new CpuBackend();
        var x = be.Allocate(DType.F32, 4, 8);
        var shortGamma = be.Allocate(DType.F32, 7);
        var ok = be.Allocate(DType.F32, 8);
        var stats = be.Allocate(DType.F32, 4);
        var ids = be.Allocate(DType.I32, 32);
        Assert.That(() => be.LayerNormForward(x, shortGamma, ok, x, stats, stats, 4, 8, Eps),
                    Throws.ArgumentException.With.Message.Contains("gamma"));
        Assert.That(() => be.LayerNormForward(x, ok, ok, x, be.Allocate(DType.F32, 3), stats, 4, 8, Eps),
                    Throws.ArgumentException.With.Message.Contains("mean"));
        Assert.That(() => be.LayerNormForward(ids, ok, ok, x, stats, stats, 4, 8, Eps),
                    Throws.ArgumentException.With.Message.Contains("F32"));
        Assert.That(() => be.LayerNormBackward(x, x, ok, stats, stats, x, ok, shortGamma, 4, 8),
                    Throws.ArgumentException.With.Message.Contains("dbeta"));
        Assert.That(() => be.LayerNormForward(x, ok, ok, x, stats, stats, 5, 8, Eps),
                    Throws.ArgumentException.With.Message.Contains("x"));
    }
}
