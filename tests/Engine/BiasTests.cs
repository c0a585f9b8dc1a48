using NativeSparsity.Engine.Backends.Cpu;
using NativeSparsity.Engine.Tensors;
using NUnit.Framework;

namespace NativeSparsity.Tests.Engine;

public class BiasTests
{
    private static readonly (int Rows, int Cols)[] Shapes = { (1, 1), (7, 13), (3, 1000), (5, 769), (300, 130), (150, 2100) };

    [TestCaseSource(nameof(Shapes))]
    public void AddBiasMatchesDoubleReference((int Rows, int Cols) shape)
    {
        var (rows, cols) = shape;
        var rng = new System.Random(TestUtil.FreshSeed());
        var y = TestUtil.RandomNormals(rng, rows * cols);
        var bias = TestUtil.RandomNormals(rng, cols);
        using var be = new CpuBackend();
        var ty = TestUtil.Upload(be, y, rows, cols);
        be.AddBias(ty, TestUtil.Upload(be, bias), rows, cols);
        var expected = new double[rows * cols];
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++)
                expected[r * cols + c] = (double)y[r * cols + c] + bias[c];
        // One float rounding of the exact sum: half an ulp.
        TestUtil.AssertClose(TestUtil.Download(ty), expected, 6e-8, 1e-45, "y + bias");
    }

    [TestCaseSource(nameof(Shapes))]
    public void BiasGradientMatchesAnalyticAndFiniteDifferenceReferences((int Rows, int Cols) shape)
    {
        var (rows, cols) = shape;
        var rng = new System.Random(TestUtil.FreshSeed());
        var dy = TestUtil.RandomNormals(rng, rows * cols);
        var dbias0 = TestUtil.RandomNormals(rng, cols);
        using var be = new CpuBackend();
        var tdb = TestUtil.Upload(be, dbias0);
        be.BiasGradient(TestUtil.Upload(be, dy, rows, cols), tdb, rows, cols);
        var dbias = TestUtil.Download(tdb);

        // Analytic: dbias0 + column sums, accumulated in double.
        var expected = new double[cols];
        var magnitude = new double[cols];
        for (int c = 0; c < cols; c++) { expected[c] = dbias0[c]; magnitude[c] = Math.Abs(dbias0[c]); }
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++) { expected[c] += dy[r * cols + c]; magnitude[c] += Math.Abs(dy[r * cols + c]); }
        for (int c = 0; c < cols; c++)
        {
            // Summed in double then rounded to float twice (the sum, then += dbias0).
            double tol = 1.2e-7 * (Math.Abs(expected[c]) + Math.Abs(dbias0[c])) + 1e-12 * magnitude[c];
            if (!(Math.Abs(dbias[c] - expected[c]) <= tol))
                Assert.Fail($"dbias[{c}] is {dbias[c]:r}, expected {expected[c]:r}");
        }

        // Finite differences of L(bias) = sum over r,c of (y + bias)[r,c] * dy[r,c] in double.
        var y = TestUtil.RandomNormals(rng, rows * cols);
        var b = TestUtil.RandomNormals(rng, cols).Select(v => (double)v).ToArray();
        double Loss()
        {
            double l = 0;
            for (int r = 0; r < rows; r++)
                for (int c = 0; c < cols; c++) l += (y[r * cols + c] + b[c]) * dy[r * cols + c];
            return l;
        }
        foreach (int c in Enumerable.Range(0, 16).Select(_ => rng.Next(cols)).Distinct())
        {
            const double h = 1e-3; // L is linear in bias, so only rounding limits h
            double keep = b[c];
            b[c] = keep + h; double up = Loss();
            b[c] = keep - h; double down = Loss();
            b[c] = keep;
            double fd = (up - down) / (2 * h);
            Assert.That(dbias[c] - (double)dbias0[c], Is.EqualTo(fd).Within(1e-6 * (1 + magnitude[c])), $"dbias[{c}] vs finite difference");
        }
    }

    // 2000 x 77: many row chunks; 200 x 2500: row chunks times column blocks, the last one partial.
    [TestCase(2000, 77)]
    [TestCase(200, 2500)]
    public void BiasGradientIsBitwiseIndependentOfThreadCount(int rows, int cols)
    {
        var rng = new System.Random(TestUtil.FreshSeed());
        var dy = TestUtil.RandomNormals(rng, rows * cols);
        float[] Run(int threads)
        {
            using var be = new CpuBackend(threads);
            var tdb = be.Allocate(DType.F32, cols);
            be.BiasGradient(TestUtil.Upload(be, dy), tdb, rows, cols);
            return TestUtil.Download(tdb);
        }
        try
        {
            var one = Run(1);
            Assert.That(Run(Environment.ProcessorCount), Is.EqualTo(one));
            Assert.That(Run(3), Is.EqualTo(one));
        }
        finally { using var restore = new CpuBackend(); }
    }

    [Test]
    public void BadArgumentsNameTheTensor()
    {
        using var be = new CpuBackend();
        var y = be.Allocate(DType.F32, 4, 8);
        Assert.That(() => be.AddBias(y, be.Allocate(DType.F32, 7), 4, 8),
                    Throws.ArgumentException.With.Message.Contains("bias"));
        Assert.That(() => be.AddBias(y, be.Allocate(DType.F32, 8), 5, 8),
                    Throws.ArgumentException.With.Message.Contains("y [5 x 8]"));
        Assert.That(() => be.BiasGradient(be.Allocate(DType.I32, 32), be.Allocate(DType.F32, 8), 4, 8),
                    Throws.ArgumentException.With.Message.Contains("F32"));
        Assert.That(() => be.BiasGradient(y, be.Allocate(DType.F32, 8), -1, 8),
                    Throws.InstanceOf<ArgumentOutOfRangeException>());
    }
}
