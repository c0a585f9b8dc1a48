using NativeSparsity.Engine.Backends.Cpu;
using NativeSparsity.Engine.Backends.Cuda;

namespace NativeSparsity.Engine.Sparsity;

public static unsafe partial class Masks
{
    /// <summary>
    /// N:M structured mask along the input dimension: in every group of M consecutive weights of a
    /// row ([out, in] storage, so a group runs along in-features), the N largest |w| are kept. Ties
    /// are broken by position as everywhere else: of equal |w|, the lower index is pruned first.
    /// Every matrix's width must be a multiple of M.
    /// </summary>
    public static MaskSet NM(PrunableSet set, int n, int m)
    {
        ArgumentNullException.ThrowIfNull(set);
        if (m < 2 || n < 1 || n >= m)
            throw new ArgumentException($"N:M needs 1 <= N < M and M >= 2, got {n}:{m}");
        foreach (var mat in set.Matrices)
            if (mat.Cols % m != 0)
                throw new ArgumentException(
                    $"N:M {n}:{m}: matrix {mat.Name} has {mat.Cols} input features, not a multiple of M = {m}");
        var keep = MaskSet.AllocateFor(set);
        if (set.Span.Backend is CudaBackend gpu)
        {
            // Widths are multiples of M and the matrices tile the span, so groups never straddle rows.
            long bad = gpu.NMKeepMask(set.Span, keep, m, m - n);
            if (bad < set.Count)
            {
                var value = new float[1];
                gpu.CopyToHost<float>(set.Span.Slice(bad, 1), value);
                throw new ArgumentException($"non-finite weight {value[0]} at {set.Describe(bad)}: N:M pruning needs finite weights");
            }
            return new MaskSet(set, keep, MaskKind.NM, 1.0 - (double)n / m, $"{n}:{m}");
        }
        byte* k = keep.U8();
        uint* bits = (uint*)set.Pointer;
        int drop = m - n;
        long firstBad = long.MaxValue;
        foreach (var mat in set.Matrices)
        {
            long offset = mat.Offset;
            int cols = mat.Cols;
            CpuParallel.ForRows(mat.Rows, cols, (r0, r1) =>
            {
                // Larger groups sort (|w| bits, position) pairs; small ones count ranks directly.
                ulong[]? scratch = m > SmallGroup ? new ulong[m] : null;
                for (int r = r0; r < r1; r++)
                {
                    long rowStart = offset + (long)r * cols;
                    for (int g = 0; g < cols; g += m)
                    {
                        long at = rowStart + g;
                        long bad = FirstNonFinite(bits + at, m);
                        if (bad >= 0)
                        {
                            // Report after the parallel loop, lowest index first, as a plain exception.
                            RadixSelect.InterlockedMin(ref firstBad, at + bad);
                            return;
                        }
                        if (scratch == null) KeepGroupSmall(bits + at, k + at, m, drop);
                        else KeepGroupSorted(bits + at, k + at, m, drop, scratch);
                    }
                }
            });
            if (firstBad != long.MaxValue)
                throw new ArgumentException(
                    $"non-finite weight {BitConverter.Int32BitsToSingle((int)bits[firstBad])} at {set.Describe(firstBad)}: N:M pruning needs finite weights");
        }
        return new MaskSet(set, keep, MaskKind.NM, 1.0 - (double)n / m, $"{n}:{m}");
    }

    private const int SmallGroup = 32;

    private static long FirstNonFinite(uint* bits, int count)
    {
        for (int i = 0; i < count; i++)
            if ((bits[i] & 0x7fff_ffffu) >= RadixSelect.NonFinite) return i;
        return -1;
    }

    /// <summary>Rank of each element in the order (|w|, position); the <paramref name="drop"/> lowest ranks are pruned.</summary>
    private static void KeepGroupSmall(uint* bits, byte* keep, int m, int drop)
    {
        for (int i = 0; i < m; i++)
        {
            uint ui = bits[i] & 0x7fff_ffffu;
            int rank = 0;
            for (int j = 0; j < m; j++)
            {
                uint uj = bits[j] & 0x7fff_ffffu;
                if (uj < ui || (uj == ui && j < i)) rank++;
            }
            keep[i] = (byte)(rank >= drop ? 1 : 0);
        }
    }

    private static void KeepGroupSorted(uint* bits, byte* keep, int m, int drop, ulong[] scratch)
    {
        for (int i = 0; i < m; i++) scratch[i] = ((ulong)(bits[i] & 0x7fff_ffffu) << 32) | (uint)i;
        Array.Sort(scratch);
        for (int i = 0; i < m; i++) keep[(int)(uint)scratch[i]] = (byte)(i >= drop ? 1 : 0);
    }
}
