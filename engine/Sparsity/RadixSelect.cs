using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using NativeSparsity.Engine.Backends.Cpu;

namespace NativeSparsity.Engine.Sparsity;

/// <summary>
/// Exact selection of order statistics of 31-bit keys (|w| as float bits: for non-negative finite
/// floats the bit pattern orders like the value) by three histogram passes over digits of 11, 11
/// and 9 bits, most significant first. Each pass narrows every requested rank to one bucket, so
/// many ranks share the passes: pass 1's single histogram answers every rank's first digit, and
/// passes 2 and 3 histogram only the elements whose prefix matches one of the ranks' buckets, one
/// sub-histogram per distinct prefix. Nothing is sorted and nothing is copied.
///
/// Work is split into fixed chunks dealt to workers round-robin; each worker keeps its own
/// histograms and they are summed afterwards. Counts are integers, so the result does not depend
/// on the thread count.
/// </summary>
internal static unsafe class RadixSelect
{
    /// <summary>Elements per chunk: a multiple of the vector width, large enough to amortise the per-chunk flush.</summary>
    internal const int ChunkElements = 1 << 18;

    private const uint AbsMask = 0x7fff_ffffu;

    /// <summary>Smallest |w| bit pattern that is not a finite float (+Inf; NaNs lie above).</summary>
    internal const uint NonFinite = 0x7f80_0000u;

    // Digit layout: bits 30..20, 19..9, 8..0.
    private static readonly int[] DigitShift = { 20, 9, 0 };
    private static readonly int[] DigitBits = { 11, 11, 9 };

    /// <summary>Result of selecting rank r: the key, how many keys are smaller, how many are equal.</summary>
    internal readonly record struct Selection(uint Key, long Below, long Equal);

    /// <summary>
    /// For each 0-based rank in <paramref name="ranks"/> (each in [0, n)), the key of that rank in
    /// ascending order of (keys[i] &amp; 0x7fffffff). Throws with <paramref name="describe"/>(i) for
    /// the lowest index whose key is +Inf or NaN.
    /// </summary>
    internal static Selection[] Select(uint* keys, long n, ReadOnlySpan<long> ranks, Func<long, string> describe)
    {
        if (n <= 0) throw new ArgumentException("cannot select from an empty span");
        int levels = ranks.Length;
        var remaining = new long[levels];
        var below = new long[levels];
        var prefix = new uint[levels];
        for (int j = 0; j < levels; j++)
        {
            if (ranks[j] < 0 || ranks[j] >= n)
                throw new ArgumentOutOfRangeException(nameof(ranks), ranks[j], $"rank must lie in [0, {n})");
            remaining[j] = ranks[j];
        }
        var equal = new long[levels];

        for (int pass = 0; pass < 3; pass++)
        {
            int bits = DigitBits[pass], buckets = 1 << bits;
            // Distinct prefixes among the levels: one sub-histogram each.
            uint[] slots = pass == 0 ? new uint[1] : prefix.Distinct().ToArray();
            long[] hist = pass == 0 ? HistogramFirstDigit(keys, n, describe)
                // Several first digits wanted (a sweep): many keys match, so route each by a table instead of compares.
                : pass == 1 && slots.Length > 1 ? HistogramSecondDigitByTable(keys, n, slots)
                : HistogramMatching(keys, n, slots, DigitShift[pass - 1], DigitShift[pass], bits);
            for (int j = 0; j < levels; j++)
            {
                int slot = pass == 0 ? 0 : Array.IndexOf(slots, prefix[j]);
                var h = new ReadOnlySpan<long>(hist, slot * buckets, buckets);
                long cum = 0;
                int b = 0;
                while (cum + h[b] <= remaining[j]) { cum += h[b]; b++; }
                below[j] += cum;
                remaining[j] -= cum;
                prefix[j] = (prefix[j] << bits) | (uint)b;
                equal[j] = h[b];
            }
        }
        var result = new Selection[levels];
        for (int j = 0; j < levels; j++) result[j] = new Selection(prefix[j], below[j], equal[j]);
        return result;
    }

    /// <summary>Pass 1: histogram of bits 30..20 over every key, checking finiteness on the way.</summary>
    private static long[] HistogramFirstDigit(uint* keys, long n, Func<long, string> describe)
    {
        const int buckets = 2048;
        int chunks = (int)((n + ChunkElements - 1) / ChunkElements);
        long firstBad = long.MaxValue;
        var total = RunWorkers(chunks, buckets, (worker, stride, hist) =>
        {
            // Four interleaved copies so runs of equal digits do not serialise on one counter.
            uint* local = stackalloc uint[4 * buckets];
            long workerBad = long.MaxValue;
            for (int c = worker; c < chunks; c += stride)
            {
                long start = (long)c * ChunkElements, end = Math.Min(n, start + ChunkElements);
                new Span<uint>(local, 4 * buckets).Clear();
                long i = start;
                for (; i + 4 <= end; i += 4)
                {
                    uint u0 = keys[i] & AbsMask, u1 = keys[i + 1] & AbsMask, u2 = keys[i + 2] & AbsMask, u3 = keys[i + 3] & AbsMask;
                    // u >= 0x7f800000 exactly when u + 0x00800000 reaches bit 31.
                    if ((((u0 + 0x0080_0000u) | (u1 + 0x0080_0000u) | (u2 + 0x0080_0000u) | (u3 + 0x0080_0000u)) & 0x8000_0000u) != 0) break;
                    local[u0 >> 20]++;
                    local[buckets + (u1 >> 20)]++;
                    local[2 * buckets + (u2 >> 20)]++;
                    local[3 * buckets + (u3 >> 20)]++;
                }
                for (; i < end; i++)
                {
                    uint u = keys[i] & AbsMask;
                    if (u >= NonFinite) { workerBad = i; break; }
                    local[u >> 20]++;
                }
                for (int b = 0; b < buckets; b++)
                    hist[b] += (long)local[b] + local[buckets + b] + local[2 * buckets + b] + local[3 * buckets + b];
                // This worker's later chunks lie further on; the lowest bad index is all we report.
                if (workerBad != long.MaxValue) break;
            }
            if (workerBad != long.MaxValue) InterlockedMin(ref firstBad, workerBad);
        });
        if (firstBad != long.MaxValue) ThrowNonFinite(keys, firstBad, describe);
        return total;
    }

    internal static void ThrowNonFinite(uint* keys, long index, Func<long, string> describe)
    {
        float value = BitConverter.Int32BitsToSingle((int)keys[index]);
        throw new ArgumentException($"non-finite weight {value} at {describe(index)}: magnitude pruning needs finite weights");
    }

    /// <summary>
    /// Passes 2 and 3: for keys whose bits above <paramref name="prefixShift"/> equal one of
    /// <paramref name="slots"/>, histogram the next <paramref name="bits"/> bits into that slot's
    /// sub-histogram. The prefix test is vectorised; most keys match no slot and cost one compare each.
    /// </summary>
    private static long[] HistogramMatching(uint* keys, long n, uint[] slots, int prefixShift, int digitShift, int bits)
    {
        int buckets = 1 << bits, q = slots.Length;
        uint digitMask = (uint)buckets - 1;
        int chunks = (int)((n + ChunkElements - 1) / ChunkElements);
        return RunWorkers(chunks, q * buckets, (worker, stride, hist) =>
        {
            var local = new uint[q * buckets];
            Span<Vector256<uint>> wanted = stackalloc Vector256<uint>[q];
            for (int j = 0; j < q; j++) wanted[j] = Vector256.Create(slots[j]);
            var abs = Vector256.Create(AbsMask);
            fixed (uint* h = local)
            fixed (uint* s = slots)
            {
                for (int c = worker; c < chunks; c += stride)
                {
                    long start = (long)c * ChunkElements, end = Math.Min(n, start + ChunkElements);
                    Array.Clear(local);
                    long i = start;
                    if (Vector256.IsHardwareAccelerated)
                    {
                        for (; i + 8 <= end; i += 8)
                        {
                            var u = Vector256.Load(keys + i) & abs;
                            var p = Vector256.ShiftRightLogical(u, prefixShift);
                            var hit = Vector256.Equals(p, wanted[0]);
                            for (int j = 1; j < q; j++) hit |= Vector256.Equals(p, wanted[j]);
                            uint lanes = hit.ExtractMostSignificantBits();
                            while (lanes != 0)
                            {
                                int lane = BitOperations.TrailingZeroCount(lanes);
                                lanes &= lanes - 1;
                                Count(h, s, q, keys[i + lane] & AbsMask, prefixShift, digitShift, digitMask, buckets);
                            }
                        }
                    }
                    for (; i < end; i++) Count(h, s, q, keys[i] & AbsMask, prefixShift, digitShift, digitMask, buckets);
                    for (int b = 0; b < local.Length; b++) hist[b] += local[b];
                }
            }
        });
    }

    /// <summary>
    /// Pass 2 for several first digits: a 2048-entry table maps each key's first digit to its slot
    /// (or to a discard slot), and the key counts in that slot's histogram of bits 19..9, with no
    /// data-dependent branch.
    /// </summary>
    private static long[] HistogramSecondDigitByTable(uint* keys, long n, uint[] slots)
    {
        const int buckets = 2048;
        int q = slots.Length;
        var table = new int[buckets];
        Array.Fill(table, q * buckets);
        for (int j = 0; j < q; j++) table[slots[j]] = j * buckets;
        int chunks = (int)((n + ChunkElements - 1) / ChunkElements);
        var total = RunWorkers(chunks, (q + 1) * buckets, (worker, stride, hist) =>
        {
            var local = new uint[(q + 1) * buckets];
            fixed (uint* h = local)
            fixed (int* t = table)
            {
                for (int c = worker; c < chunks; c += stride)
                {
                    long start = (long)c * ChunkElements, end = Math.Min(n, start + ChunkElements);
                    Array.Clear(local);
                    long i = start;
                    for (; i + 2 <= end; i += 2)
                    {
                        uint u0 = keys[i] & AbsMask, u1 = keys[i + 1] & AbsMask;
                        h[t[u0 >> 20] + (int)((u0 >> 9) & 2047)]++;
                        h[t[u1 >> 20] + (int)((u1 >> 9) & 2047)]++;
                    }
                    for (; i < end; i++)
                    {
                        uint u = keys[i] & AbsMask;
                        h[t[u >> 20] + (int)((u >> 9) & 2047)]++;
                    }
                    for (int b = 0; b < q * buckets; b++) hist[b] += local[b];
                }
            }
        });
        return total;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Count(uint* h, uint* slots, int q, uint u, int prefixShift, int digitShift, uint digitMask, int buckets)
    {
        uint p = u >> prefixShift;
        for (int j = 0; j < q; j++)
        {
            if (slots[j] == p)
            {
                h[j * buckets + (int)((u >> digitShift) & digitMask)]++;
                return;
            }
        }
    }

    /// <summary>
    /// Runs body(worker, workers, histogram) on min(threads, chunks) workers, each owning a zeroed
    /// histogram of <paramref name="size"/> counters, and returns their sum.
    /// </summary>
    internal static long[] RunWorkers(int chunks, int size, Action<int, int, long[]> body)
    {
        int workers = Math.Max(1, Math.Min(CpuParallel.MaxThreads, chunks));
        var hists = new long[workers][];
        for (int w = 0; w < workers; w++) hists[w] = new long[size];
        if (workers == 1) body(0, 1, hists[0]);
        else Parallel.For(0, workers, new ParallelOptions { MaxDegreeOfParallelism = workers }, w => body(w, workers, hists[w]));
        var total = hists[0];
        for (int w = 1; w < workers; w++)
            for (int b = 0; b < size; b++) total[b] += hists[w][b];
        return total;
    }

    internal static void InterlockedMin(ref long target, long value)
    {
        long seen = Volatile.Read(ref target);
        while (value < seen)
        {
            long prior = Interlocked.CompareExchange(ref target, value, seen);
            if (prior == seen) return;
            seen = prior;
        }
    }

    /// <summary>
    /// Writes keep[i] = 1 unless i is among the <paramref name="pruned"/> smallest keys in the order
    /// (key, index): every key below <paramref name="key"/> is pruned, and of the keys equal to it
    /// the first (pruned - below) by position. <paramref name="equal"/> is how many keys equal it.
    /// </summary>
    internal static void WriteKeepMask(uint* keys, long n, byte* keep, uint key, long below, long equal, long pruned)
    {
        long tiesPruned = pruned - below;
        if (pruned == 0)
        {
            NativeMemory.Fill(keep, (nuint)n, 1);
            return;
        }
        if (tiesPruned < 0 || tiesPruned > equal)
            throw new InvalidOperationException($"inconsistent selection: {pruned} to prune, {below} below the threshold, {equal} equal to it");
        int chunks = (int)((n + ChunkElements - 1) / ChunkElements);
        // Only a partial tie needs to know how many equal keys come before each chunk.
        long[]? tiesBefore = null, perChunk = null;
        if (tiesPruned < equal)
        {
            perChunk = new long[chunks];
            CpuParallel.For(chunks, c =>
            {
                long start = (long)c * ChunkElements, end = Math.Min(n, start + ChunkElements);
                perChunk[c] = CountEqual(keys + start, end - start, key);
            });
            tiesBefore = new long[chunks];
            for (int c = 1; c < chunks; c++) tiesBefore[c] = tiesBefore[c - 1] + perChunk[c - 1];
        }
        CpuParallel.For(chunks, c =>
        {
            long start = (long)c * ChunkElements, end = Math.Min(n, start + ChunkElements);
            long budget = tiesBefore == null ? long.MaxValue : tiesPruned - tiesBefore[c];
            // A chunk whose equal keys all fall inside the budget prunes them all, like a full tie.
            if (perChunk != null && budget >= perChunk[c]) budget = long.MaxValue;
            WriteChunk(keys + start, keep + start, end - start, key, budget);
        });
    }

    /// <summary>keep = key &gt; threshold, except that the first <paramref name="tieBudget"/> keys equal to it are pruned and the rest kept.</summary>
    private static void WriteChunk(uint* keys, byte* keep, long count, uint threshold, long tieBudget)
    {
        long i = 0;
        if (tieBudget <= 0 || tieBudget == long.MaxValue)
        {
            // Equal keys are all kept (budget spent) or all pruned (no budget limit): one compare decides.
            bool keepEqual = tieBudget <= 0;
            if (Vector256.IsHardwareAccelerated)
            {
                var abs = Vector256.Create(AbsMask);
                // u > t, or u >= t when equal keys are kept, is u > t' for t' = t - 1 (t = 0 handled by keeping all).
                if (keepEqual && threshold == 0) { NativeMemory.Fill(keep, (nuint)count, 1); return; }
                // Keys are below 2^31, so the signed compare is the unsigned one (and is native on AVX2).
                var t = Vector256.Create((int)(keepEqual ? threshold - 1 : threshold));
                ulong* spread = SpreadBits;
                for (; i + 8 <= count; i += 8)
                {
                    var u = (Vector256.Load(keys + i) & abs).AsInt32();
                    // Eight compare bits become eight 0/1 bytes through a 256-entry table.
                    *(ulong*)(keep + i) = spread[Vector256.GreaterThan(u, t).ExtractMostSignificantBits()];
                }
            }
            for (; i < count; i++)
            {
                uint u = keys[i] & AbsMask;
                keep[i] = (byte)(u > threshold || (keepEqual && u == threshold) ? 1 : 0);
            }
            return;
        }
        for (; i < count; i++)
        {
            uint u = keys[i] & AbsMask;
            if (u == threshold) keep[i] = (byte)(tieBudget-- > 0 ? 0 : 1);
            else keep[i] = (byte)(u > threshold ? 1 : 0);
        }
    }

    /// <summary>Entry b holds byte j = bit j of b, for j = 0..7 (little-endian stores put byte j at element j).</summary>
    private static readonly ulong* SpreadBits = MakeSpreadBits();

    private static ulong* MakeSpreadBits()
    {
        var table = (ulong*)NativeMemory.AlignedAlloc(256 * sizeof(ulong), 64);
        for (int b = 0; b < 256; b++)
        {
            ulong v = 0;
            for (int j = 0; j < 8; j++) if ((b >> j & 1) != 0) v |= 1UL << (8 * j);
            table[b] = v;
        }
        return table;
    }

    private static long CountEqual(uint* keys, long count, uint key)
    {
        long total = 0, i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var abs = Vector256.Create(AbsMask);
            var k = Vector256.Create(key);
            for (; i + 8 <= count; i += 8)
                total += BitOperations.PopCount(Vector256.Equals(Vector256.Load(keys + i) & abs, k).ExtractMostSignificantBits());
        }
        for (; i < count; i++) if ((keys[i] & AbsMask) == key) total++;
        return total;
    }
}
