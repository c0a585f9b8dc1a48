using NativeSparsity.Engine.Backends;
using NativeSparsity.Engine.Tensors;
using NUnit.Framework;

namespace NativeSparsity.Tests.Engine;

/// <summary>Shared helpers for op tests: fresh random inputs, host/tensor round trips, error norms.</summary>
public static class TestUtil
{
    /// <summary>A seed that differs per run unless NSPARSE_TEST_SEED fixes it; printed so a failure can be replayed.</summary>
    public static int FreshSeed()
    {
        string? fixedSeed = Environment.GetEnvironmentVariable("NSPARSE_TEST_SEED");
        int seed = fixedSeed != null ? int.Parse(fixedSeed) : System.Random.Shared.Next();
        TestContext.Out.WriteLine($"seed {seed} (set NSPARSE_TEST_SEED={seed} to replay)");
        return seed;
    }

    public static float[] RandomFloats(System.Random rng, int n, float scale = 1f)
    {
        var a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float)(rng.NextDouble() * 2 - 1) * scale;
        return a;
    }

    public static float[] RandomNormals(System.Random rng, int n, float std = 1f)
    {
        var a = new float[n];
        for (int i = 0; i < n; i++)
        {
            double u1 = 1.0 - rng.NextDouble(), u2 = rng.NextDouble();
            a[i] = (float)(std * Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2));
        }
        return a;
    }

    public static Tensor Upload(IBackend backend, float[] data, params int[] shape)
    {
        var t = backend.Allocate(DType.F32, shape.Length == 0 ? new[] { data.Length } : shape);
        backend.CopyFromHost<float>(data, t);
        return t;
    }

    public static Tensor Upload(IBackend backend, int[] data, params int[] shape)
    {
        var t = backend.Allocate(DType.I32, shape.Length == 0 ? new[] { data.Length } : shape);
        backend.CopyFromHost<int>(data, t);
        return t;
    }

    public static Tensor Upload(IBackend backend, byte[] data, params int[] shape)
    {
        var t = backend.Allocate(DType.U8, shape.Length == 0 ? new[] { data.Length } : shape);
        backend.CopyFromHost<byte>(data, t);
        return t;
    }

    public static float[] Download(Tensor t)
    {
        var a = new float[t.Length];
        t.Backend.CopyToHost<float>(t, a);
        return a;
    }

    /// <summary>||actual - expected|| / max(||expected||, tiny), over the whole arrays.</summary>
    public static double RelativeError(ReadOnlySpan<float> actual, ReadOnlySpan<double> expected)
    {
        Assert.That(actual.Length, Is.EqualTo(expected.Length), "length mismatch");
        double num = 0, den = 0;
        for (int i = 0; i < actual.Length; i++)
        {
            double d = actual[i] - expected[i];
            num += d * d; den += expected[i] * expected[i];
        }
        return Math.Sqrt(num) / Math.Max(Math.Sqrt(den), 1e-30);
    }

    /// <summary>Asserts every element is within atol + rtol*|expected| and names the first that is not.</summary>
    public static void AssertClose(ReadOnlySpan<float> actual, ReadOnlySpan<double> expected, double rtol, double atol, string what)
    {
        Assert.That(actual.Length, Is.EqualTo(expected.Length), $"{what}: length mismatch");
        for (int i = 0; i < actual.Length; i++)
        {
            double tol = atol + rtol * Math.Abs(expected[i]);
            if (!(Math.Abs(actual[i] - expected[i]) <= tol))
                Assert.Fail($"{what}: element {i} is {actual[i]}, expected {expected[i]} (tolerance {tol:g3})");
        }
    }
}
