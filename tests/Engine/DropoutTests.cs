using NativeSparsity.Engine.Backends.Cpu;
using NativeSparsity.Engine.Random;
using NUnit.Framework;

namespace NativeSparsity.Tests.Engine;

[NonParallelizable] // toggles CpuBackend.DropoutForceScalar, a process-wide switch
public class DropoutTests
{
    [TearDown]
    public void RestoreVectorPath() => CpuBackend.DropoutForceScalar = false;

    /// <summary>The contract, element by element: kept iff Philox.Uniform(seed, stream, counter + i) &gt;= p.</summary>
    private static float[] Reference(float[] x, float p, ulong seed, ulong stream, ulong counter)
    {
        var y = new float[x.Length];
        for (int i = 0; i < x.Length; i++)
            y[i] = Philox.Uniform(seed, stream, counter + (ulong)i) >= p ? x[i] / (1f - p) : 0f;
        return y;
    }

    private static ulong RandomULong(System.Random rng) => (ulong)rng.NextInt64() ^ ((ulong)rng.Next() << 63);

    [TestCase(1, 0UL, false)]
    [TestCase(3, 1UL, false)]
    [TestCase(17, 2UL, false)]
    [TestCase(31, 0UL, false)]
    [TestCase(32, 0UL, false)]
    [TestCase(33, 3UL, false)]
    [TestCase(1000, 5UL, false)]
    [TestCase(70_001, 7UL, false)]   // crosses a parallel chunk boundary
    [TestCase(70_001, 7UL, true)]
    [TestCase(1000, 1UL, true)]
    [TestCase(35, 2UL, true)]
    public void ForwardDropsExactlyWherePhiloxSays(int length, ulong counter, bool forceScalar)
    {
        var rng = new System.Random(TestUtil.FreshSeed());
        CpuBackend.DropoutForceScalar = forceScalar;
        using var cpu = new CpuBackend();
        ulong seed = RandomULong(rng), stream = (ulong)rng.Next(1000);
        float p = 0.05f + 0.9f * (float)rng.NextDouble();
        float[] x = TestUtil.RandomNormals(rng, length);
        var y = TestUtil.Upload(cpu, CentralDifferences.Nans(length));
        cpu.DropoutForward(TestUtil.Upload(cpu, x), y, p, seed, stream, counter);
        float[] actual = TestUtil.Download(y), expected = Reference(x, p, seed, stream, counter);
        for (int i = 0; i < length; i++)
            if (BitConverter.SingleToInt32Bits(actual[i]) != BitConverter.SingleToInt32Bits(expected[i]))
                Assert.Fail($"element {i} (p {p}, seed {seed}, stream {stream}, counter {counter}): {actual[i]}, expected {expected[i]}");
    }

    [Test]
    public void RandomCountersAndCountersNearWrapMatchPhilox()
    {
        var rng = new System.Random(TestUtil.FreshSeed());
        using var cpu = new CpuBackend();
        float[] x = TestUtil.RandomNormals(rng, 333);
        foreach (ulong counter in new[] { RandomULong(rng), ulong.MaxValue - 40, ulong.MaxValue - 100, ulong.MaxValue })
        {
            ulong seed = RandomULong(rng), stream = RandomULong(rng);
            var y = TestUtil.Upload(cpu, CentralDifferences.Nans(x.Length));
            cpu.DropoutForward(TestUtil.Upload(cpu, x), y, 0.3f, seed, stream, counter);
            Bitwise.AssertEqual(TestUtil.Download(y), Reference(x, 0.3f, seed, stream, counter), $"counter {counter}");
        }
    }

    [Test]
    public void BackwardReproducesTheForwardMaskAndMatchesFiniteDifferences()
    {
        var rng = new System.Random(TestUtil.FreshSeed());
        using var cpu = new CpuBackend();
        const int n = 4099;
        const float p = 0.37f;
        ulong seed = RandomULong(rng), stream = 3, counter = (ulong)rng.Next(1 << 20);
        var ones = new float[n];
        Array.Fill(ones, 1f);
        var kept = TestUtil.Upload(cpu, CentralDifferences.Nans(n));
        cpu.DropoutForward(TestUtil.Upload(cpu, ones), kept, p, seed, stream, counter);
        float[] mask = TestUtil.Download(kept);

        float[] dy = TestUtil.RandomNormals(rng, n);
        var dx = TestUtil.Upload(cpu, CentralDifferences.Nans(n));
        cpu.DropoutBackward(TestUtil.Upload(cpu, dy), dx, p, seed, stream, counter);
        float[] grad = TestUtil.Download(dx);
        for (int i = 0; i < n; i++)
        {
            float expected = mask[i] != 0 ? dy[i] / (1f - p) : 0f;
            if (grad[i] != expected) Assert.Fail($"element {i}: dx {grad[i]}, forward mask {mask[i]}, expected {expected}");
        }

        // L(x) = <dropout(x), dy> on the first elements, by central differences of the float64 reference.
        const int m = 64;
        double Loss(double[] x)
        {
            double sum = 0;
            for (int i = 0; i < m; i++)
                if (Philox.Uniform(seed, stream, counter + (ulong)i) >= p) sum += x[i] / (1.0 - p) * dy[i];
            return sum;
        }
        double[] numeric = CentralDifferences.Gradient(Loss, Array.ConvertAll(TestUtil.RandomFloats(rng, m), f => (double)f));
        TestUtil.AssertClose(grad.AsSpan(0, m), numeric, 1e-6, 1e-7, "dx vs finite differences");
    }

    [TestCase(0.1f)]
    [TestCase(0.5f)]
    [TestCase(0.9f)]
    public void DropRateIsCloseToP(float p)
    {
        using var cpu = new CpuBackend();
        const int n = 1 << 18;
        var ones = new float[n];
        Array.Fill(ones, 1f);
        var x = TestUtil.Upload(cpu, ones);
        cpu.DropoutForward(x, x, p, (ulong)TestUtil.FreshSeed(), 11, 0);
        float[] y = TestUtil.Download(x);
        int dropped = y.Count(v => v == 0f);
        // Standard deviation of the rate is sqrt(p(1-p)/n) <= 1e-3; 0.01 is ten of them.
        Assert.That(dropped / (double)n, Is.EqualTo(p).Within(0.01));
        float kept = 1f / (1f - p);
        Assert.That(Array.FindIndex(y, v => v != 0f && v != kept), Is.EqualTo(-1), "kept elements are scaled by 1/(1-p)");
    }

    [Test]
    public void CounterOffsetShiftsThePattern()
    {
        var rng = new System.Random(TestUtil.FreshSeed());
        using var cpu = new CpuBackend();
        const int n = 1000, shift = 13;
        float[] x = TestUtil.RandomNormals(rng, n + shift);
        ulong seed = RandomULong(rng), counter = (ulong)rng.Next(1 << 30);
        var whole = TestUtil.Upload(cpu, CentralDifferences.Nans(n + shift));
        cpu.DropoutForward(TestUtil.Upload(cpu, x), whole, 0.5f, seed, 0, counter);
        var shifted = TestUtil.Upload(cpu, CentralDifferences.Nans(n));
        cpu.DropoutForward(TestUtil.Upload(cpu, x[shift..]), shifted, 0.5f, seed, 0, counter + shift);
        Bitwise.AssertEqual(TestUtil.Download(shifted), TestUtil.Download(whole)[shift..], "shifted counter");

        // A different counter (or stream) gives a different pattern.
        var other = TestUtil.Upload(cpu, CentralDifferences.Nans(n));
        cpu.DropoutForward(TestUtil.Upload(cpu, x[shift..]), other, 0.5f, seed, 0, counter);
        Assert.That(TestUtil.Download(other), Is.Not.EqualTo(TestUtil.Download(shifted)));
    }

    [Test]
    public void InPlaceAndZeroProbabilityBehave()
    {
        var rng = new System.Random(TestUtil.FreshSeed());
        using var cpu = new CpuBackend();
        float[] x = TestUtil.RandomNormals(rng, 777);
        var inPlace = TestUtil.Upload(cpu, x);
        cpu.DropoutForward(inPlace, inPlace, 0.2f, 99, 1, 5);
        Bitwise.AssertEqual(TestUtil.Download(inPlace), Reference(x, 0.2f, 99, 1, 5), "in-place dropout");

        var copy = TestUtil.Upload(cpu, CentralDifferences.Nans(x.Length));
        cpu.DropoutForward(TestUtil.Upload(cpu, x), copy, 0f, 99, 1, 5);
        Bitwise.AssertEqual(TestUtil.Download(copy), x, "p = 0 copies");
        var same = TestUtil.Upload(cpu, x);
        cpu.DropoutBackward(same, same, 0f, 99, 1, 5);
        Bitwise.AssertEqual(TestUtil.Download(same), x, "p = 0 in place leaves the data alone");
    }

    [TestCase(-0.1f)]
    [TestCase(1f)]
    [TestCase(1.5f)]
    [TestCase(float.NaN)]
    public void ProbabilityOutsideUnitIntervalThrows(float p)
    {
        using var cpu = new CpuBackend();
        var x = cpu.Allocate(NativeSparsity.Engine.Tensors.DType.F32, 8);
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => cpu.DropoutForward(x, x, p, 1, 0, 0));
        Assert.That(ex!.ParamName, Is.EqualTo("p"));
        Assert.Throws<ArgumentOutOfRangeException>(() => cpu.DropoutBackward(x, x, p, 1, 0, 0));
    }
}
