using NativeSparsity.Engine.Backends.Cuda;
using NativeSparsity.Engine.Tensors;

namespace NativeSparsity.Engine.Sparsity;

/// <summary>
/// The exact magnitude threshold for pruning <see cref="Pruned"/> of <see cref="Count"/> weights.
/// The pruned weights are exactly: every |w| below <see cref="Threshold"/>, plus the first
/// <see cref="TiesPruned"/> (by position in the span) of the <see cref="EqualCount"/> weights whose
/// |w| equals it. For k &gt; 0, <see cref="Threshold"/> is the k-th smallest |w| (1-based); for k = 0
/// it is the smallest |w| and nothing is pruned.
/// </summary>
public readonly record struct MagnitudeThreshold(
    double Sparsity, long Count, long Pruned, float Threshold, long Below, long EqualCount)
{
    public long TiesPruned => Pruned - Below;

    /// <summary>The threshold's bit pattern; the order of |w| bits is the order of |w|.</summary>
    public uint ThresholdBits => (uint)BitConverter.SingleToInt32Bits(Threshold);
}

/// <summary>How the CPU selects the threshold; both are exact and give identical results.</summary>
public enum ThresholdSelection
{
    /// <summary>Bounds from a sample, one counting and gathering pass, radix passes only when the sample misleads (<see cref="SampledSelect"/>).</summary>
    Sampled,
    /// <summary>Three histogram passes (<see cref="RadixSelect"/>).</summary>
    Radix,
}

/// <summary>
/// Global one-shot magnitude pruning thresholds over a <see cref="PrunableSet"/> (the paper's OMP):
/// k = round(s × n) with midpoints rounded away from zero, selected exactly on the bits of |w| by
/// the sampled single-pass select (<see cref="SampledSelect"/>) or radix select. The CPU reads the
/// span in place.
/// </summary>
public static unsafe class GlobalMagnitudeThreshold
{
    /// <summary>The paper's sweep levels: 10%, 20%, ..., 90%.</summary>
    public static IReadOnlyList<double> DefaultSweep { get; } = new[] { 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9 };

    /// <summary>k = round(s × n), midpoints away from zero; s must lie in [0, 1).</summary>
    public static long PruneCount(double sparsity, long n)
    {
        if (!(sparsity >= 0 && sparsity < 1))
            throw new ArgumentOutOfRangeException(nameof(sparsity), sparsity, "sparsity must lie in [0, 1)");
        if (n < 0) throw new ArgumentOutOfRangeException(nameof(n), n, "count must be non-negative");
        return Math.Min(n, (long)Math.Round(sparsity * n, MidpointRounding.AwayFromZero));
    }

    /// <summary>The threshold that prunes round(s × n) weights of the span.</summary>
    public static MagnitudeThreshold Compute(PrunableSet set, double sparsity, ThresholdSelection method = ThresholdSelection.Sampled) =>
        Sweep(set, new[] { sparsity }, method)[0];

    /// <summary>
    /// Thresholds for many sparsities from one selection (one pass for all levels, not one selection each). The
    /// masks they give are nested: a weight pruned at one level is pruned at every higher level.
    /// </summary>
    public static MagnitudeThreshold[] Sweep(PrunableSet set, IReadOnlyList<double> sparsities, ThresholdSelection method = ThresholdSelection.Sampled)
    {
        ArgumentNullException.ThrowIfNull(set);
        var counts = new long[sparsities.Count];
        for (int j = 0; j < counts.Length; j++) counts[j] = PruneCount(sparsities[j], set.Count);
        var result = SelectSet(set, counts, method);
        for (int j = 0; j < result.Length; j++) result[j] = result[j] with { Sparsity = sparsities[j] };
        return result;
    }

    /// <summary>Thresholds pruning exactly <paramref name="pruneCounts"/>[j] weights (each in [0, n], so k = n is allowed here).</summary>
    public static MagnitudeThreshold[] SweepCounts(PrunableSet set, IReadOnlyList<long> pruneCounts)
    {
        ArgumentNullException.ThrowIfNull(set);
        return SelectSet(set, pruneCounts.ToArray(), ThresholdSelection.Sampled);
    }

    /// <summary>The span in place: host memory on the CPU path, device memory on a CUDA backend.</summary>
    private static MagnitudeThreshold[] SelectSet(PrunableSet set, long[] pruneCounts, ThresholdSelection method) =>
        set.Span.Backend is CudaBackend gpu
            ? CudaMagnitudeThreshold.SelectCounts(gpu, set.Span, pruneCounts, set.Describe)
            : SelectCounts((uint*)set.Pointer, set.Count, pruneCounts, set.Describe, method);

    /// <summary>
    /// Selection on raw |w| bits (a float buffer read as uint), for per-matrix pruning and for the
    /// benchmark. <paramref name="describe"/> names element i in error messages.
    /// </summary>
    internal static MagnitudeThreshold[] SelectCounts(uint* bits, long n, long[] pruneCounts, Func<long, string> describe,
        ThresholdSelection method = ThresholdSelection.Sampled)
    {
        if (n <= 0) throw new ArgumentException("cannot compute a magnitude threshold over an empty span");
        var ranks = new long[pruneCounts.Length];
        for (int j = 0; j < ranks.Length; j++)
        {
            if (pruneCounts[j] < 0 || pruneCounts[j] > n)
                throw new ArgumentOutOfRangeException(nameof(pruneCounts), pruneCounts[j], $"prune count must lie in [0, {n}]");
            // k = 0 selects the smallest |w| and prunes none of it.
            ranks[j] = Math.Max(pruneCounts[j], 1) - 1;
        }
        var sel = method == ThresholdSelection.Radix
            ? RadixSelect.Select(bits, n, ranks, describe)
            : SampledSelect.Select(bits, n, ranks, describe);
        var result = new MagnitudeThreshold[ranks.Length];
        for (int j = 0; j < result.Length; j++)
            result[j] = new MagnitudeThreshold((double)pruneCounts[j] / n, n, pruneCounts[j],
                BitConverter.Int32BitsToSingle((int)sel[j].Key), sel[j].Below, sel[j].Equal);
        return result;
    }

    /// <summary>Writes the keep mask (1 = keep) of a threshold over the span into a U8 tensor of the same length.</summary>
    public static void WriteKeepMask(PrunableSet set, in MagnitudeThreshold threshold, Tensor keep)
    {
        ArgumentNullException.ThrowIfNull(set);
        if (threshold.Count != set.Count)
            throw new ArgumentException($"threshold was computed over {threshold.Count} weights, the set holds {set.Count}", nameof(threshold));
        if (set.Span.Backend is CudaBackend gpu)
        {
            MaskSet.CheckMaskShape(keep, set.Count, nameof(keep));
            CudaMagnitudeThreshold.WriteKeepMask(gpu, set.Span, threshold, keep);
            return;
        }
        byte* k = MaskSet.CheckMaskTensor(keep, set.Count, nameof(keep));
        WriteKeepMask((uint*)set.Pointer, set.Count, threshold, k);
    }

    internal static void WriteKeepMask(uint* bits, long n, in MagnitudeThreshold t, byte* keep) =>
        RadixSelect.WriteKeepMask(bits, n, keep, t.ThresholdBits, t.Below, t.EqualCount, t.Pruned);
}
