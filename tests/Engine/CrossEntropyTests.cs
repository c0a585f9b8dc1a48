using NativeSparsity.Engine.Backends.Cpu;
using NUnit.Framework;

namespace NativeSparsity.Tests.Engine;

public class CrossEntropyTests
{
    private const int Ignore = -100;

    /// <summary>Plain float64 loss of one row: log(sum exp(x)) - x[target], with the max factored out.</summary>
    private static double RowLoss(ReadOnlySpan<double> x, int target)
    {
        double max = double.NegativeInfinity;
        foreach (double v in x) max = Math.Max(max, v);
        double sum = 0;
        foreach (double v in x) sum += Math.Exp(v - max);
        return max + Math.Log(sum) - x[target];
    }

    /// <summary>Logits of mixed scale, one row shifted far from zero where a naive exp would overflow.</summary>
    private static float[] Logits(System.Random rng, int rows, int classes)
    {
        float[] logits = TestUtil.RandomNormals(rng, rows * classes, 3f);
        if (rows > 1)
            for (int c = 0; c < classes; c++) logits[classes + c] += 500f;
        return logits;
    }

    /// <summary>Random targets with every third row (starting at row 2) ignored.</summary>
    private static int[] Targets(System.Random rng, int rows, int classes)
    {
        var t = new int[rows];
        for (int r = 0; r < rows; r++) t[r] = r % 3 == 2 ? Ignore : rng.Next(classes);
        return t;
    }

    [TestCase(1, 1)]
    [TestCase(1, 2)]
    [TestCase(5, 7)]
    [TestCase(13, 31)]
    [TestCase(4, 33)]
    [TestCase(7, 1001)]
    [TestCase(3, 30522)]
    public void ForwardMatchesReferenceAndIgnoresRows(int rows, int classes)
    {
        var rng = new System.Random(TestUtil.FreshSeed());
        using var cpu = new CpuBackend();
        float[] logits = Logits(rng, rows, classes);
        int[] targets = Targets(rng, rows, classes);
        var losses = TestUtil.Upload(cpu, CentralDifferences.Nans(rows));
        cpu.CrossEntropyForward(TestUtil.Upload(cpu, logits), TestUtil.Upload(cpu, targets), losses, rows, classes, Ignore);
        float[] actual = TestUtil.Download(losses);

        var expected = new double[rows];
        for (int r = 0; r < rows; r++)
            expected[r] = targets[r] == Ignore ? 0
                : RowLoss(Array.ConvertAll(logits[(r * classes)..((r + 1) * classes)], f => (double)f), targets[r]);
        TestUtil.AssertClose(actual, expected, 1e-5, 1e-5, "losses");
        for (int r = 0; r < rows; r++)
        {
            if (targets[r] == Ignore) Assert.That(actual[r], Is.EqualTo(0f), $"ignored row {r}");
            else Assert.That(actual[r], Is.GreaterThanOrEqualTo(0f), $"row {r}: cross-entropy is never negative");
        }
    }

    [TestCase(1, 1)]
    [TestCase(1, 3)]
    [TestCase(5, 7)]
    [TestCase(4, 33)]
    [TestCase(3, 101)]
    public void BackwardMatchesAnalyticReferenceAndFiniteDifferences(int rows, int classes)
    {
        var rng = new System.Random(TestUtil.FreshSeed());
        using var cpu = new CpuBackend();
        float[] logits = Logits(rng, rows, classes);
        int[] targets = Targets(rng, rows, classes);
        int counted = targets.Count(t => t != Ignore);
        float scale = 1f / Math.Max(counted, 1);
        var dlogits = TestUtil.Upload(cpu, CentralDifferences.Nans(rows * classes));
        cpu.CrossEntropyBackward(TestUtil.Upload(cpu, logits), TestUtil.Upload(cpu, targets), dlogits, rows, classes, Ignore, scale);
        float[] grad = TestUtil.Download(dlogits);

        var analytic = new double[rows * classes];
        for (int r = 0; r < rows; r++)
        {
            if (targets[r] == Ignore) continue;
            double max = double.NegativeInfinity, sum = 0;
            for (int c = 0; c < classes; c++) max = Math.Max(max, logits[r * classes + c]);
            for (int c = 0; c < classes; c++) sum += Math.Exp(logits[r * classes + c] - max);
            for (int c = 0; c < classes; c++)
                analytic[r * classes + c] = scale * (Math.Exp(logits[r * classes + c] - max) / sum - (c == targets[r] ? 1 : 0));
        }
        TestUtil.AssertClose(grad, analytic, 1e-5, 1e-6, "dlogits vs analytic");

        // L(logits) = scale * sum of the counted rows' losses.
        double Loss(double[] x)
        {
            double total = 0;
            for (int r = 0; r < rows; r++)
                if (targets[r] != Ignore) total += RowLoss(x.AsSpan(r * classes, classes), targets[r]);
            return scale * total;
        }
        double[] numeric = CentralDifferences.Gradient(Loss, Array.ConvertAll(logits, f => (double)f), 1e-4);
        TestUtil.AssertClose(grad, numeric, 1e-4, 1e-6, "dlogits vs finite differences");

        for (int r = 0; r < rows; r++)
        {
            double rowSum = 0;
            for (int c = 0; c < classes; c++) rowSum += grad[r * classes + c];
            Assert.That(rowSum, Is.EqualTo(0).Within(scale * (2e-6 + 2e-7 * classes)), $"row {r} gradient sum");
            if (targets[r] == Ignore)
                for (int c = 0; c < classes; c++)
                    Assert.That(BitConverter.SingleToInt32Bits(grad[r * classes + c]), Is.Zero, $"ignored row {r} must be +0");
        }
    }

    [Test]
    public void BackwardInPlaceOverLogitsEqualsOutOfPlace()
    {
        var rng = new System.Random(TestUtil.FreshSeed());
        using var cpu = new CpuBackend();
        const int rows = 9, classes = 517;
        float[] logits = Logits(rng, rows, classes);
        var targets = TestUtil.Upload(cpu, Targets(rng, rows, classes));
        var separate = TestUtil.Upload(cpu, CentralDifferences.Nans(rows * classes));
        cpu.CrossEntropyBackward(TestUtil.Upload(cpu, logits), targets, separate, rows, classes, Ignore, 0.25f);
        var inPlace = TestUtil.Upload(cpu, logits);
        cpu.CrossEntropyBackward(inPlace, targets, inPlace, rows, classes, Ignore, 0.25f);
        Bitwise.AssertEqual(TestUtil.Download(inPlace), TestUtil.Download(separate), "in-place dlogits");
    }

    [Test]
    public void LargeBatchIsIndependentOfThreadCount()
    {
        var rng = new System.Random(TestUtil.FreshSeed());
        const int rows = 120, classes = 1001;
        float[] logits = Logits(rng, rows, classes);
        int[] targets = Targets(rng, rows, classes);
        (float[], float[]) Run(int threads)
        {
            using var cpu = new CpuBackend(threads);
            var t = TestUtil.Upload(cpu, targets);
            var losses = cpu.Allocate(NativeSparsity.Engine.Tensors.DType.F32, rows);
            var grad = cpu.Allocate(NativeSparsity.Engine.Tensors.DType.F32, rows, classes);
            cpu.CrossEntropyForward(TestUtil.Upload(cpu, logits), t, losses, rows, classes, Ignore);
            cpu.CrossEntropyBackward(TestUtil.Upload(cpu, logits), t, grad, rows, classes, Ignore, 0.01f);
            return (TestUtil.Download(losses), TestUtil.Download(grad));
        }
        var one = Run(1);
        var many = Run(Math.Max(8, Environment.ProcessorCount));
        Bitwise.AssertEqual(many.Item1, one.Item1, "losses with many threads vs one");
        Bitwise.AssertEqual(many.Item2, one.Item2, "dlogits with many threads vs one");
    }

    [TestCase(7)]
    [TestCase(-1)]
    public void TargetOutsideClassesThrowsNamingTheRow(int badTarget)
    {
        using var cpu = new CpuBackend();
        const int rows = 4, classes = 7;
        var logits = cpu.Allocate(NativeSparsity.Engine.Tensors.DType.F32, rows, classes);
        var targets = TestUtil.Upload(cpu, new[] { 0, Ignore, 6, badTarget });
        var losses = cpu.Allocate(NativeSparsity.Engine.Tensors.DType.F32, rows);
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => cpu.CrossEntropyForward(logits, targets, losses, rows, classes, Ignore));
        Assert.That(ex!.Message, Does.Contain($"targets[3] = {badTarget}"));
        ex = Assert.Throws<ArgumentOutOfRangeException>(() => cpu.CrossEntropyBackward(logits, targets, logits, rows, classes, Ignore, 1f));
        Assert.That(ex!.Message, Does.Contain($"targets[3] = {badTarget}"));
    }
}
