using NativeSparsity.Engine.Backends.Cpu;

namespace NativeSparsity.Engine.Sparsity;

/// <summary>
/// Agreement of two keep masks over the same span, with what two independent uniformly random
/// masks of the same densities would give. Random masks of densities d1 and d2 already have cosine
/// near sqrt(d1·d2), so a similarity only means something beside its chance level.
/// </summary>
/// <param name="Count">Weights in the span (n).</param>
/// <param name="KeptA">Weights kept by the first mask.</param>
/// <param name="KeptB">Weights kept by the second mask.</param>
/// <param name="KeptBoth">Weights kept by both.</param>
public sealed record MaskSimilarityResult(long Count, long KeptA, long KeptB, long KeptBoth)
{
    public double DensityA => (double)KeptA / Count;
    public double DensityB => (double)KeptB / Count;

    /// <summary>Cosine of the 0/1 keep vectors: |A∩B| / sqrt(|A|·|B|); NaN when a mask keeps nothing.</summary>
    public double Cosine => KeptA == 0 || KeptB == 0 ? double.NaN : KeptBoth / Math.Sqrt((double)KeptA * KeptB);

    /// <summary>Jaccard of the kept sets: |A∩B| / |A∪B|; 1 when both keep nothing.</summary>
    public double Jaccard => KeptA + KeptB - KeptBoth == 0 ? 1.0 : (double)KeptBoth / (KeptA + KeptB - KeptBoth);

    /// <summary>Positions where the masks differ.</summary>
    public long Hamming => KeptA + KeptB - 2 * KeptBoth;

    /// <summary>Hamming distance as a fraction of the span.</summary>
    public double HammingFraction => (double)Hamming / Count;

    /// <summary>Chance cosine, sqrt(d1·d2): exact in expectation for random masks of fixed counts (E|A∩B| = |A||B|/n).</summary>
    public double ChanceCosine => Math.Sqrt(DensityA * DensityB);

    /// <summary>Chance Jaccard, d1·d2 / (d1 + d2 − d1·d2) (the ratio of the expectations).</summary>
    public double ChanceJaccard
    {
        get
        {
            double d1 = DensityA, d2 = DensityB, union = d1 + d2 - d1 * d2;
            return union == 0 ? 1.0 : d1 * d2 / union;
        }
    }

    /// <summary>Chance Hamming distance, n·(d1 + d2 − 2·d1·d2): exact in expectation.</summary>
    public double ChanceHamming => Count * (DensityA + DensityB - 2 * DensityA * DensityB);
}

public static unsafe class MaskSimilarity
{
    /// <summary>Similarity of two masks over the same prunable set.</summary>
    public static MaskSimilarityResult Compare(MaskSet a, MaskSet b)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        if (a.Set.Count != b.Set.Count)
            throw new ArgumentException($"masks [{a.Description}] and [{b.Description}] cover {a.Set.Count} and {b.Set.Count} weights; they must cover the same span");
        return Compare(a.Keep.U8(), b.Keep.U8(), a.Set.Count);
    }

    /// <summary>Similarity restricted to each matrix, in the order of the set's matrices.</summary>
    public static IReadOnlyList<(PrunableMatrix Matrix, MaskSimilarityResult Similarity)> CompareByMatrix(MaskSet a, MaskSet b)
    {
        Compare(a, b); // same checks
        var result = new List<(PrunableMatrix, MaskSimilarityResult)>();
        foreach (var m in a.Set.Matrices)
            result.Add((m, Compare(a.Keep.U8() + m.Offset, b.Keep.U8() + m.Offset, m.Count)));
        return result;
    }

    /// <summary>Similarity of two byte masks of <paramref name="n"/> entries (non-zero = keep).</summary>
    public static MaskSimilarityResult Compare(ReadOnlySpan<byte> a, ReadOnlySpan<byte> b)
    {
        if (a.Length != b.Length) throw new ArgumentException($"masks hold {a.Length} and {b.Length} entries; they must be equal");
        if (a.Length == 0) throw new ArgumentException("cannot compare empty masks");
        fixed (byte* pa = a)
        fixed (byte* pb = b)
            return Compare(pa, pb, a.Length);
    }

    internal static MaskSimilarityResult Compare(byte* a, byte* b, long n)
    {
        var (ca, cb, cab) = MaskCounting.CountPair(a, b, n);
        return new MaskSimilarityResult(n, ca, cb, cab);
    }
}
