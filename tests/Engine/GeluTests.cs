using NativeSparsity.Engine.Backends.Cpu;
using NativeSparsity.Engine.Tensors;
using NUnit.Framework;

namespace NativeSparsity.Tests.Engine;

public class GeluTests
{
    private static readonly (int Rows, int Cols)[] Shapes = { (1, 1), (7, 13), (3, 1000), (5, 769), (41, 1031) };

    /// <summary>
    /// erf in double from erf(x) = 2/sqrt(pi) e^(-x^2) sum_n (2x^2)^n x / (2n+1)!!: every term is
    /// positive, so nothing cancels and the sum is good to ~1e-14 relative for |x| up to 6.
    /// </summary>
    internal static double ErfReference(double x)
    {
        double a = Math.Abs(x);
        if (a > 6) return Math.Sign(x);
        double term = a, sum = a, twoX2 = 2 * a * a;
        for (int n = 1; n < 500 && term > 1e-17 * sum; n++)
        {
            term *= twoX2 / (2 * n + 1);
            sum += term;
        }
        return Math.Sign(x) * 2 / Math.Sqrt(Math.PI) * Math.Exp(-a * a) * sum;
    }

    private static double GeluReference(double x) => 0.5 * x * (1 + ErfReference(x / Math.Sqrt(2)));

    private static double GeluDerivativeReference(double x) =>
        0.5 * (1 + ErfReference(x / Math.Sqrt(2))) + x * Math.Exp(-x * x / 2) / Math.Sqrt(2 * Math.PI);

    [Test]
    public void ErfReferenceMatchesTabulatedValues()
    {
        // Published values of erf, to 16 digits.
        Assert.That(ErfReference(0.5), Is.EqualTo(0.5204998778130465).Within(1e-15));
        Assert.That(ErfReference(1.0), Is.EqualTo(0.8427007929497149).Within(1e-15));
        Assert.That(ErfReference(2.0), Is.EqualTo(0.9953222650189527).Within(1e-15));
        Assert.That(ErfReference(-3.0), Is.EqualTo(-0.9999779095030014).Within(1e-15));
        Assert.That(1 - ErfReference(5.0), Is.EqualTo(1.5374597944280349e-12).Within(2e-15));
    }

    [Test]
    public void ErfIsAccurateOnADenseGrid()
    {
        // Every float step of 2^-14 over [-7, 7], plus float neighbours of the branch points.
        var xs = new List<float>();
        for (int i = -7 * 16384; i <= 7 * 16384; i++) xs.Add(i / 16384f);
        foreach (float edge in new[] { 1f, 3.92f })
        {
            float lo = edge, hi = edge;
            for (int k = 0; k < 64; k++)
            {
                lo = MathF.BitDecrement(lo); hi = MathF.BitIncrement(hi);
                xs.Add(lo); xs.Add(hi); xs.Add(-lo); xs.Add(-hi);
            }
        }
        var rng = new System.Random(TestUtil.FreshSeed());
        xs.AddRange(TestUtil.RandomNormals(rng, 20_001, 2f));
        xs.AddRange(TestUtil.RandomFloats(rng, 1_003, 1e-3f));

        var x = xs.ToArray();
        var y = new float[x.Length];
        CpuErf.Erf(x, y);
        double worst = 0; float worstAt = 0;
        for (int i = 0; i < x.Length; i++)
        {
            double err = Math.Abs(y[i] - ErfReference(x[i]));
            if (err > worst) { worst = err; worstAt = x[i]; }
        }
        var negated = x.Select(v => -v).ToArray();
        var yNegated = new float[x.Length];
        CpuErf.Erf(negated, yNegated);
        for (int i = 0; i < x.Length; i++)
            if (yNegated[i] != -y[i]) Assert.Fail($"erf must be odd: erf({negated[i]:r}) = {yNegated[i]:r}, erf({x[i]:r}) = {y[i]:r}");
        TestContext.Out.WriteLine($"erf max abs error {worst:e3} at x = {worstAt:r} over {x.Length} points");
        Assert.That(worst, Is.LessThan(1.0e-7), $"erf max abs error at x = {worstAt:r}");
        // Near zero erf(x) ~ 2x/sqrt(pi): the error must be relative there, not just absolute.
        foreach (float tiny in new[] { 1e-30f, 1e-10f, 1e-5f, -3e-4f })
            Assert.That(ErfOf(tiny), Is.EqualTo(ErfReference(tiny)).Within(2e-7 * Math.Abs(ErfReference(tiny))));
    }

    [Test]
    public void ErfSpecialValues()
    {
        Assert.That(ErfOf(0f), Is.EqualTo(0f));
        Assert.That(ErfOf(float.PositiveInfinity), Is.EqualTo(1f));
        Assert.That(ErfOf(float.NegativeInfinity), Is.EqualTo(-1f));
        Assert.That(ErfOf(1e30f), Is.EqualTo(1f));
        Assert.That(float.IsNaN(ErfOf(float.NaN)), "erf(NaN) must be NaN");
    }

    private static float ErfOf(float x)
    {
        var y = new float[1];
        CpuErf.Erf(new[] { x }, y);
        return y[0];
    }

    [TestCaseSource(nameof(Shapes))]
    public void ForwardMatchesDoubleReference((int Rows, int Cols) shape)
    {
        var rng = new System.Random(TestUtil.FreshSeed());
        int n = shape.Rows * shape.Cols;
        var x = TestUtil.RandomNormals(rng, n, 3f);
        if (n > 4) { x[0] = 0f; x[1] = -12f; x[2] = 9f; x[3] = -1f; }
        using var be = new CpuBackend();
        var tx = TestUtil.Upload(be, x, shape.Rows, shape.Cols);
        var ty = be.Allocate(DType.F32, shape.Rows, shape.Cols);
        be.GeluForward(tx, ty);
        var y = TestUtil.Download(ty);
        for (int i = 0; i < n; i++)
        {
            double expected = GeluReference(x[i]);
            double tol = 2.5e-7 * Math.Abs(expected) + 1e-7 * Math.Abs(x[i]);
            if (!(Math.Abs(y[i] - expected) <= tol)) Assert.Fail($"gelu({x[i]:r}) at {i} is {y[i]:r}, expected {expected:r}");
        }
    }

    [Test]
    public void ForwardNegativeTailKeepsRelativeAccuracy()
    {
        // 1 + erf(z) is formed without cancellation, so gelu(-4) ~ -1.3e-4 is right to float precision.
        var x = new float[] { -2f, -3f, -4f, -5f };
        using var be = new CpuBackend();
        var t = TestUtil.Upload(be, x);
        be.GeluForward(t, t);
        var y = TestUtil.Download(t);
        for (int i = 0; i < x.Length; i++)
            Assert.That(y[i], Is.EqualTo(GeluReference(x[i])).Within(2e-6 * Math.Abs(GeluReference(x[i]))), $"gelu({x[i]})");
    }

    [Test]
    public void ForwardInPlaceEqualsOutOfPlace()
    {
        var rng = new System.Random(TestUtil.FreshSeed());
        var x = TestUtil.RandomNormals(rng, 5 * 769, 2f);
        using var be = new CpuBackend();
        var tx = TestUtil.Upload(be, x);
        var ty = be.Allocate(DType.F32, x.Length);
        be.GeluForward(tx, ty);
        be.GeluForward(tx, tx);
        Assert.That(TestUtil.Download(tx), Is.EqualTo(TestUtil.Download(ty)));
    }

    [Test]
    public void DerivativeReferenceAgreesWithFiniteDifferences()
    {
        // Checks the analytic formula the backward tests rely on against the double forward.
        var rng = new System.Random(TestUtil.FreshSeed());
        var x = TestUtil.RandomNormals(rng, 2000, 3f);
        const double h = 1e-5;
        foreach (float xi in x)
        {
            double fd = (GeluReference(xi + h) - GeluReference(xi - h)) / (2 * h);
            if (!(Math.Abs(GeluDerivativeReference(xi) - fd) <= 1e-8))
                Assert.Fail($"gelu'({xi:r}) = {GeluDerivativeReference(xi):r}, finite difference {fd:r}");
        }
    }

    [TestCaseSource(nameof(Shapes))]
    public void BackwardMatchesAnalyticAndFiniteDifferenceReferences((int Rows, int Cols) shape)
    {
        var rng = new System.Random(TestUtil.FreshSeed());
        int n = shape.Rows * shape.Cols;
        var x = TestUtil.RandomNormals(rng, n, 3f);
        var dy = TestUtil.RandomNormals(rng, n);
        using var be = new CpuBackend();
        var tx = TestUtil.Upload(be, x, shape.Rows, shape.Cols);
        var tdy = TestUtil.Upload(be, dy, shape.Rows, shape.Cols);
        var tdx = be.Allocate(DType.F32, shape.Rows, shape.Cols);
        be.GeluBackward(tx, tdy, tdx);
        var dx = TestUtil.Download(tdx);
        const double h = 1e-5;
        for (int i = 0; i < n; i++)
        {
            double analytic = dy[i] * GeluDerivativeReference(x[i]);
            double fd = dy[i] * (GeluReference(x[i] + h) - GeluReference(x[i] - h)) / (2 * h);
            double tol = 5e-7 * Math.Abs(dy[i]) * (1 + Math.Abs(x[i]));
            if (!(Math.Abs(dx[i] - analytic) <= tol))
                Assert.Fail($"dx at x = {x[i]:r}, dy = {dy[i]:r} is {dx[i]:r}, analytic reference {analytic:r}");
            if (!(Math.Abs(dx[i] - fd) <= tol + 1e-8 * Math.Abs(dy[i])))
                Assert.Fail($"dx at x = {x[i]:r}, dy = {dy[i]:r} is {dx[i]:r}, finite-difference reference {fd:r}");
        }
    }

    [Test]
    public void BackwardMayOverwriteDy()
    {
        var rng = new System.Random(TestUtil.FreshSeed());
        var x = TestUtil.RandomNormals(rng, 3 * 1000, 2f);
        var dy = TestUtil.RandomNormals(rng, x.Length);
        using var be = new CpuBackend();
        var tx = TestUtil.Upload(be, x);
        var tdy = TestUtil.Upload(be, dy);
        var tdx = be.Allocate(DType.F32, x.Length);
        be.GeluBackward(tx, tdy, tdx);
        be.GeluBackward(tx, tdy, tdy);
        Assert.That(TestUtil.Download(tdy), Is.EqualTo(TestUtil.Download(tdx)));
    }

    [Test]
    public void MismatchedLengthsAreRejected()
    {
        using var be = new CpuBackend();
        var x = be.Allocate(DType.F32, 10);
        var y = be.Allocate(DType.F32, 9);
        var ids = be.Allocate(DType.I32, 10);
        Assert.That(() => be.GeluForward(x, y), Throws.ArgumentException.With.Message.Contains("y"));
        Assert.That(() => be.GeluBackward(x, x, y), Throws.ArgumentException.With.Message.Contains("dx"));
        Assert.That(() => be.GeluForward(ids, x), Throws.ArgumentException.With.Message.Contains("F32"));
    }
}
