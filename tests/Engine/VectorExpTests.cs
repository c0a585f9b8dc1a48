using NativeSparsity.Engine.Backends.Cpu;
using NUnit.Framework;

namespace NativeSparsity.Tests.Engine;

public unsafe class VectorExpTests
{
    private static float[] Exp(float[] x)
    {
        var y = new float[x.Length];
        fixed (float* px = x)
        fixed (float* py = y)
            VectorExp.Exp(px, py, x.Length);
        return y;
    }

    [Test]
    public void ExpIsWithinTwoUlpOnADenseGridAndRandomPoints()
    {
        // Every 2^-10 step over [-87, 88] (the whole normal range), plus random normals and the
        // odd length 1 (the tail path alone).
        var xs = new List<float>();
        for (int i = -87 * 1024; i <= 88 * 1024; i++) xs.Add(i / 1024f);
        var rng = new System.Random(TestUtil.FreshSeed());
        xs.AddRange(TestUtil.RandomNormals(rng, 10_007, 10f));
        var x = xs.ToArray();
        var y = Exp(x);
        double worst = 0;
        for (int i = 0; i < x.Length; i++)
        {
            if (x[i] is < -87.33f or > 88.37f) continue;   // outside the documented accurate range
            double exact = Math.Exp(x[i]);
            double ulp = Math.Abs(MathF.BitIncrement((float)exact) - (float)exact);
            worst = Math.Max(worst, Math.Abs(y[i] - exact) / ulp);
        }
        Assert.That(worst, Is.LessThan(2.0), "worst error in ulp of exp");
        Assert.That(Exp(new[] { 0.5f })[0], Is.EqualTo(MathF.Exp(0.5f)).Within(1e-7f));
    }

    [Test]
    public void ExpHandlesTheEdges()
    {
        var y = Exp(new[] { float.NegativeInfinity, -88f, -1000f, 0f, 89f, float.PositiveInfinity, float.NaN, -0f, 88.3f });
        Assert.That(y[0], Is.EqualTo(0f));
        Assert.That(y[1], Is.EqualTo(0f), "below the normal range gives 0");
        Assert.That(y[2], Is.EqualTo(0f));
        Assert.That(y[3], Is.EqualTo(1f));
        Assert.That(float.IsPositiveInfinity(y[4]), Is.True, "exp(89) overflows");
        Assert.That(float.IsPositiveInfinity(y[5]), Is.True);
        Assert.That(float.IsNaN(y[6]), Is.True);
        Assert.That(y[7], Is.EqualTo(1f));
        Assert.That(y[8], Is.EqualTo(Math.Exp(88.3f)).Within(2.4e-7 * Math.Exp(88.3f)));
    }
}
