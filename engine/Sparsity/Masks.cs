using System.Runtime.InteropServices;
using NativeSparsity.Engine.Backends.Cpu;
using NativeSparsity.Engine.Random;

namespace NativeSparsity.Engine.Sparsity;

/// <summary>Builds <see cref="MaskSet"/>s of every kind over a prunable set held on the CPU.</summary>
public static unsafe partial class Masks
{
    /// <summary>The paper's mask: the round(s × n) smallest |w| of the whole set pruned, ties by position.</summary>
    public static MaskSet GlobalMagnitude(PrunableSet set, double sparsity) =>
        GlobalMagnitudeSweep(set, new[] { sparsity })[0];

    /// <summary>
    /// Global magnitude masks for several sparsities from one threshold sweep. For increasing
    /// sparsity they are nested: the order (|w|, position) is total, so each level's pruned set is a
    /// prefix of the next one's.
    /// </summary>
    public static MaskSet[] GlobalMagnitudeSweep(PrunableSet set, IReadOnlyList<double> sparsities)
    {
        var thresholds = GlobalMagnitudeThreshold.Sweep(set, sparsities);
        var masks = new MaskSet[thresholds.Length];
        for (int j = 0; j < masks.Length; j++)
        {
            var keep = MaskSet.AllocateFor(set);
            GlobalMagnitudeThreshold.WriteKeepMask(set, thresholds[j], keep);
            masks[j] = new MaskSet(set, keep, MaskKind.GlobalMagnitude, sparsities[j],
                $"global magnitude {sparsities[j]:P1} (|w| threshold {thresholds[j].Threshold:G9})");
        }
        return masks;
    }

    /// <summary>round(s × count) smallest |w| pruned in every matrix separately.</summary>
    public static MaskSet PerMatrixMagnitude(PrunableSet set, double sparsity)
    {
        ArgumentNullException.ThrowIfNull(set);
        var keep = MaskSet.AllocateFor(set);
        byte* k = keep.U8();
        uint* bits = (uint*)set.Pointer;
        foreach (var m in set.Matrices)
        {
            long pruned = GlobalMagnitudeThreshold.PruneCount(sparsity, m.Count);
            long offset = m.Offset;
            var t = GlobalMagnitudeThreshold.SelectCounts(bits + offset, m.Count, new[] { pruned },
                i => set.Describe(offset + i))[0];
            GlobalMagnitudeThreshold.WriteKeepMask(bits + offset, m.Count, t, k + offset);
        }
        return new MaskSet(set, keep, MaskKind.PerMatrixMagnitude, sparsity, $"per-matrix magnitude {sparsity:P1}");
    }

    /// <summary>
    /// Exactly round(s × n) uniformly random positions of the whole set pruned. Weight i gets the
    /// key Philox(seed, stream, i) and the smallest keys are pruned (ties by position), so the mask
    /// depends only on (seed, stream, n) and not on the weights.
    /// </summary>
    public static MaskSet RandomGlobal(PrunableSet set, double sparsity, ulong seed, ulong stream = 0)
    {
        ArgumentNullException.ThrowIfNull(set);
        long pruned = GlobalMagnitudeThreshold.PruneCount(sparsity, set.Count);
        var keep = MaskSet.AllocateFor(set);
        WriteRandom(keep.U8(), 0, set.Count, pruned, seed, stream);
        return new MaskSet(set, keep, MaskKind.RandomGlobal, sparsity, $"random {sparsity:P1} (seed {seed}, stream {stream})");
    }

    /// <summary>
    /// Random positions with, in every matrix, exactly as many pruned as <paramref name="like"/>
    /// prunes there: the baseline that separates "which weights" from "how many per matrix".
    /// </summary>
    public static MaskSet RandomPerMatrix(MaskSet like, ulong seed, ulong stream = 0)
    {
        ArgumentNullException.ThrowIfNull(like);
        var set = like.Set;
        long[] perMatrix = like.PrunedPerMatrix();
        var keep = MaskSet.AllocateFor(set);
        for (int i = 0; i < perMatrix.Length; i++)
        {
            var m = set.Matrices[i];
            WriteRandom(keep.U8() + m.Offset, m.Offset, m.Count, perMatrix[i], seed, stream);
        }
        double sparsity = (double)perMatrix.Sum() / set.Count;
        return new MaskSet(set, keep, MaskKind.RandomPerMatrix, sparsity,
            $"random with the per-matrix counts of [{like.Description}] (seed {seed}, stream {stream})");
    }

    /// <summary>Prunes <paramref name="pruned"/> of <paramref name="count"/> positions whose keys come from Philox counters firstIndex, firstIndex+1, ...</summary>
    private static void WriteRandom(byte* keep, long firstIndex, long count, long pruned, ulong seed, ulong stream)
    {
        uint* keys = (uint*)NativeMemory.Alloc((nuint)count, sizeof(uint));
        try
        {
            CpuParallel.ForRange(count, RadixSelect.ChunkElements, (start, end) =>
            {
                long i = start;
                while (i < end)
                {
                    // One Philox block serves four consecutive elements.
                    ulong global = (ulong)(firstIndex + i);
                    var (a, b, c, d) = Philox.Words(seed, stream, global >> 2);
                    for (int word = (int)(global & 3); word < 4 && i < end; word++, i++)
                    {
                        uint r = word switch { 0 => a, 1 => b, 2 => c, _ => d };
                        // Scale 32 random bits onto [0, 0x7f800000): every key is a "finite float" for the selector.
                        keys[i] = (uint)(((ulong)r * RadixSelect.NonFinite) >> 32);
                    }
                }
            });
            var sel = SampledSelect.Select(keys, count, new[] { Math.Max(pruned, 1) - 1 }, i => $"random key {i}");
            RadixSelect.WriteKeepMask(keys, count, keep, sel[0].Key, sel[0].Below, sel[0].Equal, pruned);
        }
        finally
        {
            NativeMemory.Free(keys);
        }
    }
}
