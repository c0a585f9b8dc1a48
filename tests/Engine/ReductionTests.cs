using NativeSparsity.Engine.Backends.Cpu;
using NativeSparsity.Engine.Tensors;
using NUnit.Framework;

namespace NativeSparsity.Tests.Engine;

public class ReductionTests
{
    private static readonly int[] Lengths = { 0, 1, 7, 91, 3000, 3845, 300_001 };

    private static float Reduce(CpuBackend be, float[] x, bool squares)
    {
        var result = be.Allocate(DType.F32, 1);
        var tx = TestUtil.Upload(be, x);
        if (squares) be.SumOfSquares(tx, result); else be.Sum(tx, result);
        return TestUtil.Download(result)[0];
    }

    [TestCaseSource(nameof(Lengths))]
    public void SumAndSumOfSquaresMatchDoubleReference(int n)
    {
        var rng = new System.Random(TestUtil.FreshSeed());
        // A positive offset makes the plain float sum drift; the double accumulation must not.
        var x = TestUtil.RandomNormals(rng, n).Select(v => v + 0.25f).ToArray();
        double sum = 0, sumSq = 0, abs = 0;
        foreach (float v in x) { sum += v; sumSq += (double)v * v; abs += Math.Abs(v); }
        using var be = new CpuBackend();
        float s = Reduce(be, x, squares: false), q = Reduce(be, x, squares: true);
        // Double accumulation leaves only the final rounding to float (half an ulp).
        Assert.That(s, Is.EqualTo(sum).Within(6e-8 * Math.Abs(sum) + 1e-13 * abs), "sum");
        Assert.That(q, Is.EqualTo(sumSq).Within(6e-8 * sumSq + 1e-45), "sum of squares");
        Assert.That(s, Is.EqualTo((float)sum), "sum rounds to the nearest float of the double sum");
    }

    [Test]
    public void ResultIsBitwiseIndependentOfThreadCount()
    {
        var rng = new System.Random(TestUtil.FreshSeed());
        var x = TestUtil.RandomNormals(rng, 1_000_003, 3f);
        float[] Run(int threads)
        {
            using var be = new CpuBackend(threads);
            return new[] { Reduce(be, x, false), Reduce(be, x, true) };
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
    public void ResultMayBeAViewIntoALargerTensor()
    {
        using var be = new CpuBackend();
        var x = TestUtil.Upload(be, new float[] { 1f, 2f, -4f });
        var buffer = TestUtil.Upload(be, new float[] { 9f, 9f, 9f });
        be.SumOfSquares(x, buffer.Slice(1, 1));
        Assert.That(TestUtil.Download(buffer), Is.EqualTo(new[] { 9f, 21f, 9f }));
    }

    [Test]
    public void BadArgumentsAreRejected()
    {
        using var be = new CpuBackend();
        var x = be.Allocate(DType.F32, 5);
        Assert.That(() => be.Sum(x, be.Allocate(DType.F32, 0)), Throws.ArgumentException.With.Message.Contains("result"));
        Assert.That(() => be.Sum(x, be.Allocate(DType.I32, 1)), Throws.ArgumentException.With.Message.Contains("result"));
        Assert.That(() => be.SumOfSquares(be.Allocate(DType.U8, 5), be.Allocate(DType.F32, 1)),
                    Throws.ArgumentException.With.Message.Contains("F32"));
    }
}
