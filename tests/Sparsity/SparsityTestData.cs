using NativeSparsity.Engine.Backends.Cpu;
using NativeSparsity.Engine.Sparsity;
using NativeSparsity.Tests.Engine;
using NUnit.Framework;

namespace NativeSparsity.Tests.Sparsity;

/// <summary>Prunable sets over host data and plain references (sorting) for the sparsity tests.</summary>
internal static class SparsityTestData
{
    /// <summary>A set whose matrices are named like BERT's ("bert.encoder.layer.{i}.m.weight") with the given shapes.</summary>
    public static PrunableSet MakeSet(CpuBackend backend, float[] data, params (int Rows, int Cols)[] shapes)
    {
        if (shapes.Length == 0) shapes = new[] { (1, data.Length) };
        var matrices = new List<PrunableMatrix>();
        long offset = 0;
        for (int i = 0; i < shapes.Length; i++)
        {
            matrices.Add(new PrunableMatrix($"bert.encoder.layer.{i}.attention.self.query.weight", offset, shapes[i].Rows, shapes[i].Cols));
            offset += (long)shapes[i].Rows * shapes[i].Cols;
        }
        Assert.That(offset, Is.EqualTo(data.Length), "test shapes must cover the data");
        return new PrunableSet(TestUtil.Upload(backend, data), matrices);
    }

    /// <summary>Data families with the awkward cases: ties, signed zeros, subnormals.</summary>
    public static float[] Make(string kind, System.Random rng, int n) => kind switch
    {
        "normal" => TestUtil.RandomNormals(rng, n, 0.05f),
        "allEqual" => Enumerable.Repeat(-0.25f, n).Select((x, i) => i % 3 == 0 ? -x : x).ToArray(),
        "manyTies" => Enumerable.Range(0, n).Select(_ => (rng.Next(2) == 0 ? -1 : 1) * 0.125f * rng.Next(5)).ToArray(),
        "signedZeros" => Enumerable.Range(0, n).Select(_ => rng.Next(4) switch { 0 => 0f, 1 => -0f, 2 => 1e-3f, _ => -2e-3f }).ToArray(),
        "denormals" => Enumerable.Range(0, n).Select(_ => rng.Next(5) switch
        {
            0 => 0f,
            1 => -float.Epsilon * rng.Next(1, 4),
            2 => BitConverter.Int32BitsToSingle(rng.Next(1, 0x007f_ffff)),
            3 => -BitConverter.Int32BitsToSingle(rng.Next(1, 0x007f_ffff)),
            _ => (float)rng.NextDouble(),
        }).ToArray(),
        _ => throw new ArgumentException(kind),
    };

    public static readonly string[] Kinds = { "normal", "allEqual", "manyTies", "signedZeros", "denormals" };

    /// <summary>The pruned positions by the definition: the first k of the order (|w|, index).</summary>
    public static byte[] ReferenceKeep(float[] w, long k) => ReferenceKeep(ReferenceOrder(w), k);

    /// <summary>Indices sorted by (|w|, index).</summary>
    public static int[] ReferenceOrder(float[] w)
    {
        var order = Enumerable.Range(0, w.Length).ToArray();
        Array.Sort(order, (a, b) =>
        {
            int c = MathF.Abs(w[a]).CompareTo(MathF.Abs(w[b]));
            return c != 0 ? c : a.CompareTo(b);
        });
        return order;
    }

    public static byte[] ReferenceKeep(int[] order, long k)
    {
        var keep = Enumerable.Repeat((byte)1, order.Length).ToArray();
        for (long i = 0; i < k; i++) keep[order[i]] = 0;
        return keep;
    }

    public static float[] SortedAbs(float[] w)
    {
        var a = w.Select(MathF.Abs).ToArray();
        Array.Sort(a);
        return a;
    }

    public static byte[] Bytes(MaskSet mask) => mask.Keep.U8Span().ToArray();

    /// <summary>Runs body with the CPU ops limited to <paramref name="threads"/> workers, restoring the setting after.</summary>
    public static T WithThreads<T>(int threads, Func<T> body)
    {
        int saved = CpuParallel.MaxThreads;
        CpuParallel.MaxThreads = threads;
        try { return body(); }
        finally { CpuParallel.MaxThreads = saved; }
    }
}
