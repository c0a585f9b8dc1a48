using NativeSparsity.Engine.Backends.Cpu;
using NativeSparsity.Engine.Tensors;
using System.Runtime.InteropServices;
using NUnit.Framework;

namespace NativeSparsity.Tests.Engine;

/// <summary>Bitwise array comparison that stays fast for a million elements and names the first difference.</summary>

public class ElementwiseTests
{
    // Odd sizes around the vector widths, and one over several parallel chunks.
    private static readonly int[] Lengths = { 1, 7 * 13 * 5, 3 * 1000, 5 * 769, 200_003 };

    [TestCaseSource(nameof(Lengths))]
    public void AddMatchesDoubleReferenceAndMayAliasEitherInput(int n)
    {
        var rng = new System.Random(TestUtil.FreshSeed());
        var a = TestUtil.RandomNormals(rng, n);
        var b = TestUtil.RandomNormals(rng, n, 3f);
        var expected = a.Zip(b, (p, q) => (double)p + q).ToArray();
        using var be = new CpuBackend();
        var ty = be.Allocate(DType.F32, n);
        be.Add(TestUtil.Upload(be, a), TestUtil.Upload(be, b), ty);
        var y = TestUtil.Download(ty);
        TestUtil.AssertClose(y, expected, 6e-8, 1e-45, "a + b");

        var ta = TestUtil.Upload(be, a);
        be.Add(ta, TestUtil.Upload(be, b), ta);
        Bitwise.AssertEqual(TestUtil.Download(ta), y, "y aliasing a");
        var tb = TestUtil.Upload(be, b);
        be.Add(TestUtil.Upload(be, a), tb, tb);
        Bitwise.AssertEqual(TestUtil.Download(tb), y, "y aliasing b");
        var tx = TestUtil.Upload(be, a);
        be.Add(tx, tx, tx);
        Bitwise.AssertEqual(TestUtil.Download(tx), a.Select(v => v + v).ToArray(), "a, b and y all one tensor");
    }

    [TestCaseSource(nameof(Lengths))]
    public void AxpyMatchesDoubleReference(int n)
    {
        var rng = new System.Random(TestUtil.FreshSeed());
        var x = TestUtil.RandomNormals(rng, n);
        var y = TestUtil.RandomNormals(rng, n);
        float alpha = (float)(rng.NextDouble() * 4 - 2);
        using var be = new CpuBackend();
        var ty = TestUtil.Upload(be, y);
        be.Axpy(alpha, TestUtil.Upload(be, x), ty);
        var expected = x.Zip(y, (p, q) => (double)alpha * p + q).ToArray();
        // Fused: one rounding of the exact result.
        TestUtil.AssertClose(TestUtil.Download(ty), expected, 6e-8, 1e-45, "y + alpha x");

        var txy = TestUtil.Upload(be, x);
        be.Axpy(alpha, txy, txy);
        TestUtil.AssertClose(TestUtil.Download(txy), x.Select(v => (1.0 + alpha) * v).ToArray(), 6e-8, 1e-45, "x aliasing y");
    }

    [TestCaseSource(nameof(Lengths))]
    public void ScaleMatchesDoubleReference(int n)
    {
        var rng = new System.Random(TestUtil.FreshSeed());
        var x = TestUtil.RandomNormals(rng, n);
        float alpha = (float)(rng.NextDouble() * 4 - 2);
        using var be = new CpuBackend();
        var tx = TestUtil.Upload(be, x);
        be.Scale(tx, alpha);
        // The double product of two floats is exact, so the float result must be its rounding.
        Bitwise.AssertEqual(TestUtil.Download(tx), x.Select(v => (float)((double)v * alpha)).ToArray(), "alpha x");
    }

    [Test]
    public void MismatchedLengthsAndDtypesAreRejected()
    {
        using var be = new CpuBackend();
        var a = be.Allocate(DType.F32, 10);
        var shorter = be.Allocate(DType.F32, 9);
        Assert.That(() => be.Add(a, shorter, a), Throws.ArgumentException.With.Message.Contains("b"));
        Assert.That(() => be.Add(a, a, shorter), Throws.ArgumentException.With.Message.Contains("y"));
        Assert.That(() => be.Axpy(1f, shorter, a), Throws.ArgumentException.With.Message.Contains("y"));
        Assert.That(() => be.Scale(be.Allocate(DType.I32, 4), 2f), Throws.ArgumentException.With.Message.Contains("F32"));
    }

    // ---- Copy and Fill (CpuBackend.cs) -----------------------------------------------------

    [TestCase(1)]
    [TestCase(3845)]
    [TestCase(600_001)] // over 2 MiB: the parallel path
    public void CopyReproducesEveryDtypeBitwise(int n)
    {
        var rng = new System.Random(TestUtil.FreshSeed());
        using var be = new CpuBackend();
        var floats = TestUtil.RandomNormals(rng, n);
        floats[0] = float.NaN;
        var f = TestUtil.Upload(be, floats);
        var fOut = be.Allocate(DType.F32, n);
        be.Copy(f, fOut);
        Bitwise.AssertEqual(TestUtil.Download(fOut), floats, "F32 copy");

        var ints = Enumerable.Range(0, n).Select(_ => rng.Next(int.MinValue, int.MaxValue)).ToArray();
        var iOut = be.Allocate(DType.I32, n);
        be.Copy(TestUtil.Upload(be, ints), iOut);
        var intsBack = new int[n];
        be.CopyToHost<int>(iOut, intsBack);
        Bitwise.AssertEqual(intsBack, ints, "I32 copy");

        var bytes = new byte[n];
        rng.NextBytes(bytes);
        var bOut = be.Allocate(DType.U8, n);
        be.Copy(TestUtil.Upload(be, bytes), bOut);
        var bytesBack = new byte[n];
        be.CopyToHost<byte>(bOut, bytesBack);
        Bitwise.AssertEqual(bytesBack, bytes, "U8 copy");
    }

    [TestCase(100, 3)]
    [TestCase(600_000, 777)]
    public void CopyBetweenViewsTouchesOnlyTheDestination(int n, int shift)
    {
        var rng = new System.Random(TestUtil.FreshSeed());
        var data = TestUtil.RandomNormals(rng, n + 2 * shift);
        using var be = new CpuBackend();
        // Disjoint views of one storage.
        var whole = TestUtil.Upload(be, data);
        int half = (n + 2 * shift) / 2;
        be.Copy(whole.Slice(0, half - shift), whole.Slice(half, half - shift));
        var expected = (float[])data.Clone();
        Array.Copy(data, 0, expected, half, half - shift);
        Bitwise.AssertEqual(TestUtil.Download(whole), expected, "disjoint views");

        // Overlapping views behave like memmove, forwards and backwards.
        foreach (bool forward in new[] { true, false })
        {
            var t = TestUtil.Upload(be, data);
            var (src, dst) = forward ? (t.Slice(0, n), t.Slice(shift, n)) : (t.Slice(shift, n), t.Slice(0, n));
            be.Copy(src, dst);
            var moved = (float[])data.Clone();
            Array.Copy(data, forward ? 0 : shift, moved, forward ? shift : 0, n);
            Bitwise.AssertEqual(TestUtil.Download(t), moved, forward ? "overlap, forwards" : "overlap, backwards");
        }
    }

    [Test]
    public void CopyRejectsMismatches()
    {
        using var be = new CpuBackend();
        Assert.That(() => be.Copy(be.Allocate(DType.F32, 4), be.Allocate(DType.I32, 4)), Throws.ArgumentException);
        Assert.That(() => be.Copy(be.Allocate(DType.F32, 4), be.Allocate(DType.F32, 5)), Throws.ArgumentException);
    }

    [TestCase(1)]
    [TestCase(3845)]
    [TestCase(300_001)]
    public void FillSetsEveryElementOfTheViewAndNothingElse(int n)
    {
        var rng = new System.Random(TestUtil.FreshSeed());
        float value = (float)rng.NextDouble() - 0.5f;
        using var be = new CpuBackend();
        var outer = TestUtil.Upload(be, Enumerable.Repeat(7f, n + 10).ToArray());
        be.Fill(outer.Slice(3, n), value);
        var all = TestUtil.Download(outer);
        var expected = Enumerable.Repeat(7f, n + 10).ToArray();
        Array.Fill(expected, value, 3, n);
        Bitwise.AssertEqual(all, expected, "fill of a view");

        var t = be.Allocate(DType.F32, n);
        be.Fill(t, float.NegativeInfinity);
        Bitwise.AssertEqual(TestUtil.Download(t), Enumerable.Repeat(float.NegativeInfinity, n).ToArray(), "fill with -inf");
    }
}
