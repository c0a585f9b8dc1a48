using System.Numerics;
using System.Runtime.Intrinsics;
using NativeSparsity.Engine.Backends.Cpu;

namespace NativeSparsity.Engine.Sparsity;

/// <summary>
/// Exact order statistics of 31-bit keys (|w| bits) reading the span about once, the same answers
/// as <see cref="RadixSelect.Select"/>:
/// 1. a strided sample of the keys gives, for every rank, bounds that hold it with high probability
///    (sample rank ± 4 standard deviations of a sample quantile);
/// 2. one vectorised pass counts the keys at or above every bound and gathers the keys that fall
///    inside the bounds ("candidates", about 1% of the span a level); values that are heavily tied
///    in the sample (a pruned checkpoint's zeros) become point segments that are only counted;
/// 3. the exact rank is selected among a segment's candidates (a small radix select, in cache).
/// Ranks whose bounds the data contradicts, or a pass whose candidates outgrow what the sample
/// predicted, fall back to the radix passes, so the result never depends on the sample.
/// </summary>
internal static unsafe class SampledSelect
{
    internal const int DefaultSampleSize = 1 << 18;

    /// <summary>Half-width of the bounds in standard deviations of the sample quantile.</summary>
    private const double Z = 4.0;

    private const uint AbsMask = 0x7fff_ffffu;
    private const int BlockVectors = 64;

    /// <summary>Half-open key range [Start, End); a gather segment collects its keys, a point segment (End = Start + 1) only counts them.</summary>
    private readonly record struct Segment(uint Start, uint End, bool Gather);

    internal static RadixSelect.Selection[] Select(uint* keys, long n, ReadOnlySpan<long> ranks, Func<long, string> describe) =>
        // A sweep gathers around every level: a larger sample narrows all of its bounds.
        Select(keys, n, ranks, describe, ranks.Length > 1 ? 2 * DefaultSampleSize : DefaultSampleSize, out _);

    /// <summary>As above; <paramref name="fellBack"/> is how many distinct ranks the radix passes answered.</summary>
    internal static RadixSelect.Selection[] Select(uint* keys, long n, ReadOnlySpan<long> ranks, Func<long, string> describe,
        int sampleSize, out int fellBack)
    {
        if (n <= 0) throw new ArgumentException("cannot select from an empty span");
        foreach (long r in ranks)
            if (r < 0 || r >= n) throw new ArgumentOutOfRangeException(nameof(ranks), r, $"rank must lie in [0, {n})");
        long[] distinct = ranks.ToArray().Distinct().Order().ToArray();
        fellBack = distinct.Length;
        if (!Vector256.IsHardwareAccelerated || distinct.Length == 0) return RadixSelect.Select(keys, n, ranks, describe);

        int m = (int)Math.Min(Math.Max(sampleSize, 1), n);
        var sample = new uint[m];
        for (int j = 0; j < m; j++)
        {
            // Centres of m equal strides; (2j + 1) n < 2^63 for any span that fits in memory.
            sample[j] = keys[(2L * j + 1) * n / (2L * m)] & AbsMask;
            // A non-finite key: let the radix pass find the lowest one and name it.
            if (sample[j] >= RadixSelect.NonFinite) return RadixSelect.Select(keys, n, ranks, describe);
        }
        var segments = Plan(sample, n, distinct, out long expected);
        long cap = Math.Min(n, 2 * expected + 65536);
        var (belowStart, belowEnd, candidates) = Pass(keys, n, segments, cap, describe);

        var answers = new Dictionary<long, RadixSelect.Selection>();
        var failed = new List<long>();
        if (candidates == null) failed.AddRange(distinct);
        else
        {
            var pending = new Dictionary<int, List<long>>();
            foreach (long r in distinct)
            {
                int s = 0;
                while (s < segments.Length && !(belowStart[s] <= r && r < belowEnd[s])) s++;
                if (s == segments.Length) failed.Add(r);
                else if (!segments[s].Gather)
                    answers[r] = new RadixSelect.Selection(segments[s].Start, belowStart[s], belowEnd[s] - belowStart[s]);
                else
                {
                    if (!pending.TryGetValue(s, out var list)) pending[s] = list = new List<long>();
                    list.Add(r);
                }
            }
            foreach (var (s, list) in pending)
            {
                fixed (uint* c = candidates[s])
                {
                    var sel = RadixSelect.Select(c, candidates[s]!.Length, list.Select(r => r - belowStart[s]).ToArray(), i => $"candidate {i}");
                    for (int j = 0; j < list.Count; j++)
                        answers[list[j]] = new RadixSelect.Selection(sel[j].Key, belowStart[s] + sel[j].Below, sel[j].Equal);
                }
            }
        }
        fellBack = failed.Count;
        if (failed.Count > 0)
        {
            var sel = RadixSelect.Select(keys, n, failed.ToArray(), describe);
            for (int j = 0; j < failed.Count; j++) answers[failed[j]] = sel[j];
        }
        var result = new RadixSelect.Selection[ranks.Length];
        for (int j = 0; j < result.Length; j++) result[j] = answers[ranks[j]];
        return result;
    }

    /// <summary>
    /// The segments to count and gather: per rank the sample's bounds, merged where they meet, with
    /// heavily tied bound values split out as point segments. <paramref name="expected"/> is how
    /// many keys the sample predicts the gather segments hold.
    /// </summary>
    private static Segment[] Plan(uint[] sample, long n, long[] ranks, out long expected)
    {
        int m = sample.Length;
        var wanted = new List<long>();
        var bounds = new List<(long Lo, long Hi)>();
        foreach (long r in ranks)
        {
            double p = (r + 0.5) / n, c = p * m, h = Z * Math.Sqrt(m * p * (1 - p)) + 2;
            long lo = (long)Math.Floor(c - h), hi = (long)Math.Ceiling(c + h);
            bounds.Add((lo, hi));
            if (lo >= 0) wanted.Add(lo);
            if (hi < m) wanted.Add(hi);
        }
        var stats = new Dictionary<long, RadixSelect.Selection>();
        if (wanted.Count > 0)
        {
            long[] w = wanted.Distinct().ToArray();
            fixed (uint* s = sample)
            {
                var sel = RadixSelect.Select(s, m, w, i => $"sample {i}");
                for (int j = 0; j < w.Length; j++) stats[w[j]] = sel[j];
            }
        }
        // A value with this many copies in the sample has ~heavy·n/m in the span: count it, do not gather it.
        long heavy = Math.Max(8, m / 1024);
        var intervals = new List<(uint Lo, uint Hi)>();
        var points = new SortedSet<uint>();
        expected = 0;
        foreach (var (lo, hi) in bounds)
        {
            uint a = lo < 0 ? 0u : stats[lo].Key, b = hi >= m ? RadixSelect.NonFinite - 1 : stats[hi].Key;
            intervals.Add((a, b));
            if (lo >= 0 && stats[lo].Equal >= heavy) points.Add(a);
            if (hi < m && stats[hi].Equal >= heavy) points.Add(b);
            expected += (long)((Math.Min(hi, m - 1) - Math.Max(lo, 0) + 1) * ((double)n / m));
        }
        intervals.Sort();
        var merged = new List<(uint Lo, uint Hi)>();
        foreach (var iv in intervals)
        {
            if (merged.Count > 0 && iv.Lo <= merged[^1].Hi + 1)
                merged[^1] = (merged[^1].Lo, Math.Max(merged[^1].Hi, iv.Hi));
            else merged.Add(iv);
        }
        var segments = new List<Segment>();
        foreach (var (lo, hi) in merged)
        {
            uint cursor = lo;
            foreach (uint v in points.GetViewBetween(lo, hi))
            {
                if (cursor < v) segments.Add(new Segment(cursor, v, true));
                segments.Add(new Segment(v, v + 1, false));
                cursor = v + 1;
            }
            if (cursor <= hi) segments.Add(new Segment(cursor, hi + 1, true));
        }
        return segments.ToArray();
    }

    /// <summary>
    /// One pass over the span: per segment how many keys lie below its start and below its end,
    /// and each gather segment's keys (candidates null when they outgrow <paramref name="cap"/>).
    /// Throws on the lowest non-finite key.
    /// </summary>
    private static (long[] BelowStart, long[] BelowEnd, uint[]?[]? Candidates) Pass(uint* keys, long n, Segment[] segments,
        long cap, Func<long, string> describe)
    {
        int[] gather = Enumerable.Range(0, segments.Length).Where(s => segments[s].Gather).ToArray();
        int[] point = Enumerable.Range(0, segments.Length).Where(s => !segments[s].Gather).ToArray();
        int g = gather.Length, q = point.Length;
        // Thresholds t = bound - 1: u > t is u ≥ bound for keys below 2^31, a signed compare native on AVX2.
        int[] gLo = gather.Select(s => (int)segments[s].Start - 1).ToArray(), gHi = gather.Select(s => (int)segments[s].End - 1).ToArray();
        int[] pLo = point.Select(s => (int)segments[s].Start - 1).ToArray(), pHi = point.Select(s => (int)segments[s].End - 1).ToArray();
        int chunks = (int)((n + RadixSelect.ChunkElements - 1) / RadixSelect.ChunkElements);
        int workers = Math.Max(1, Math.Min(CpuParallel.MaxThreads, chunks));
        var lists = new CandidateList[workers][];
        for (int w = 0; w < workers; w++) lists[w] = Enumerable.Range(0, g).Select(_ => new CandidateList()).ToArray();
        long gathered = 0, firstBad = long.MaxValue;
        bool overflow = false;
        // Counters: keys ≥ each gather start, then keys ≥ each point's start and end.
        var atOrAbove = RadixSelect.RunWorkers(chunks, g + 2 * q, (worker, stride, hist) =>
        {
            var scan = new Scanner(gLo, gHi, pLo, pHi, lists[worker]);
            for (int c = worker; c < chunks && !Volatile.Read(ref overflow); c += stride)
            {
                long start = (long)c * RadixSelect.ChunkElements, end = Math.Min(n, start + RadixSelect.ChunkElements);
                long bad = scan.Chunk(keys, start, end, hist, out long added);
                if (bad >= 0) { RadixSelect.InterlockedMin(ref firstBad, bad); break; }
                if (Interlocked.Add(ref gathered, added) > cap) Volatile.Write(ref overflow, true);
            }
        });
        // After an overflow some chunks were skipped, so the radix fallback finds the lowest bad key instead.
        if (!overflow && firstBad != long.MaxValue) RadixSelect.ThrowNonFinite(keys, firstBad, describe);
        var belowStart = new long[segments.Length];
        var belowEnd = new long[segments.Length];
        if (overflow) return (belowStart, belowEnd, null);
        var candidates = new uint[]?[segments.Length];
        for (int j = 0; j < g; j++)
        {
            var all = new uint[lists.Sum(l => (long)l[j].Count)];
            long at = 0;
            foreach (var l in lists) { Array.Copy(l[j].Items, 0, all, at, l[j].Count); at += l[j].Count; }
            int s = gather[j];
            candidates[s] = all;
            belowStart[s] = n - atOrAbove[j];
            belowEnd[s] = belowStart[s] + all.Length;
        }
        for (int j = 0; j < q; j++)
        {
            belowStart[point[j]] = n - atOrAbove[g + 2 * j];
            belowEnd[point[j]] = n - atOrAbove[g + 2 * j + 1];
        }
        return (belowStart, belowEnd, candidates);
    }

    private sealed class CandidateList
    {
        public uint[] Items = new uint[1024];
        public int Count;

        public void Add(uint u)
        {
            if (Count == Items.Length) Array.Resize(ref Items, 2 * Items.Length);
            Items[Count++] = u;
        }
    }

    /// <summary>
    /// One worker's scan. Keys go through in blocks of 64 vectors held in L1; gather segments are
    /// tested four at a time so that their counters stay in registers.
    /// </summary>
    private sealed class Scanner(int[] gLo, int[] gHi, int[] pLo, int[] pHi, CandidateList[] lists)
    {
        private readonly Vector256<int>[] _buf = new Vector256<int>[BlockVectors];
        private readonly Vector256<int>[] _hit = new Vector256<int>[BlockVectors];
        private readonly Vector256<int>[] _acc = new Vector256<int>[gLo.Length + 2 * pLo.Length];
        private long _added;

        /// <summary>Counts and gathers keys[start..end) into hist; returns the first non-finite index, or -1.</summary>
        public long Chunk(uint* keys, long start, long end, long[] hist, out long added)
        {
            _added = 0;
            Array.Clear(_acc);
            long i = start;
            if (gLo.Length == 1 && pLo.Length == 0) i = Single(keys, start, end, hist);
            if (i < 0) { added = _added; return FirstBad(keys, start); }
            fixed (Vector256<int>* buf = _buf, hit = _hit, acc = _acc)
            fixed (int* lo = gLo, hi = gHi, plo = pLo, phi = pHi)
            {
                while (end - i >= 8)
                {
                    int vectors = (int)Math.Min(BlockVectors, (end - i) / 8);
                    if (!Load(keys + i, buf, hit, vectors)) { added = _added; return FirstBad(keys, i); }
                    int j = 0;
                    for (; j + 4 <= gLo.Length; j += 4) Gather4(buf, hit, vectors, lo + j, hi + j, acc + j);
                    for (; j < gLo.Length; j++) Gather1(buf, hit, vectors, lo[j], hi[j], acc + j);
                    for (int p = 0; p < pLo.Length; p++) Count2(buf, vectors, plo[p], phi[p], acc + gLo.Length + 2 * p);
                    Collect(buf, hit, vectors);
                    i += 8 * vectors;
                }
                // Each lane counted -1 per key at or above a bound.
                for (int j = 0; j < _acc.Length; j++) hist[j] -= Vector256.Sum(acc[j]);
            }
            for (; i < end; i++)
            {
                uint u = keys[i] & AbsMask;
                if (u >= RadixSelect.NonFinite) { added = _added; return i; }
                for (int j = 0; j < gLo.Length; j++)
                    if ((int)u > gLo[j]) { hist[j]++; if ((int)u <= gHi[j]) Add(j, u); }
                for (int p = 0; p < pLo.Length; p++)
                {
                    if ((int)u > pLo[p]) hist[gLo.Length + 2 * p]++;
                    if ((int)u > pHi[p]) hist[gLo.Length + 2 * p + 1]++;
                }
            }
            added = _added;
            return -1;
        }

        /// <summary>
        /// One level on a span without heavy ties (the common case): count and test each vector as it
        /// is loaded, nothing staged in L1. Returns where the scalar tail starts, or -1 on a non-finite key.
        /// </summary>
        private long Single(uint* keys, long start, long end, long[] hist)
        {
            var abs = Vector256.Create((int)AbsMask);
            var finite = Vector256.Create((int)(RadixSelect.NonFinite - 1));
            Vector256<int> lo = Vector256.Create(gLo[0]), hi = Vector256.Create(gHi[0]), a = Vector256<int>.Zero, bad = a;
            long i = start;
            for (; i + 8 <= end; i += 8)
            {
                var u = Vector256.Load((int*)keys + i) & abs;
                bad |= Vector256.GreaterThan(u, finite);
                var m = Vector256.GreaterThan(u, lo);
                a += m;
                uint lanes = Vector256.AndNot(m, Vector256.GreaterThan(u, hi)).ExtractMostSignificantBits();
                while (lanes != 0)
                {
                    int lane = BitOperations.TrailingZeroCount(lanes);
                    lanes &= lanes - 1;
                    Add(0, (uint)u.GetElement(lane));
                }
            }
            if (bad != Vector256<int>.Zero) return -1;
            hist[0] -= Vector256.Sum(a);
            return i;
        }

        private static long FirstBad(uint* keys, long i)
        {
            while ((keys[i] & AbsMask) < RadixSelect.NonFinite) i++;
            return i;
        }

        /// <summary>|keys| into buf, hit cleared; false when a key is not finite.</summary>
        private static bool Load(uint* src, Vector256<int>* buf, Vector256<int>* hit, int vectors)
        {
            var abs = Vector256.Create((int)AbsMask);
            var finite = Vector256.Create((int)(RadixSelect.NonFinite - 1));
            var bad = Vector256<int>.Zero;
            for (int v = 0; v < vectors; v++)
            {
                var u = Vector256.Load((int*)src + 8 * v) & abs;
                buf[v] = u;
                bad |= Vector256.GreaterThan(u, finite);
                hit[v] = Vector256<int>.Zero;
            }
            return bad == Vector256<int>.Zero;
        }

        private static void Gather4(Vector256<int>* buf, Vector256<int>* hit, int vectors, int* lo, int* hi, Vector256<int>* acc)
        {
            Vector256<int> l0 = Vector256.Create(lo[0]), l1 = Vector256.Create(lo[1]), l2 = Vector256.Create(lo[2]), l3 = Vector256.Create(lo[3]);
            Vector256<int> h0 = Vector256.Create(hi[0]), h1 = Vector256.Create(hi[1]), h2 = Vector256.Create(hi[2]), h3 = Vector256.Create(hi[3]);
            Vector256<int> a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
            for (int v = 0; v < vectors; v++)
            {
                var u = buf[v];
                Vector256<int> m0 = Vector256.GreaterThan(u, l0), m1 = Vector256.GreaterThan(u, l1);
                Vector256<int> m2 = Vector256.GreaterThan(u, l2), m3 = Vector256.GreaterThan(u, l3);
                a0 += m0; a1 += m1; a2 += m2; a3 += m3;
                hit[v] |= Vector256.AndNot(m0, Vector256.GreaterThan(u, h0)) | Vector256.AndNot(m1, Vector256.GreaterThan(u, h1))
                    | Vector256.AndNot(m2, Vector256.GreaterThan(u, h2)) | Vector256.AndNot(m3, Vector256.GreaterThan(u, h3));
            }
            acc[0] = a0; acc[1] = a1; acc[2] = a2; acc[3] = a3;
        }

        private static void Gather1(Vector256<int>* buf, Vector256<int>* hit, int vectors, int lo, int hi, Vector256<int>* acc)
        {
            Vector256<int> l = Vector256.Create(lo), h = Vector256.Create(hi), a = *acc;
            for (int v = 0; v < vectors; v++)
            {
                var m = Vector256.GreaterThan(buf[v], l);
                a += m;
                hit[v] |= Vector256.AndNot(m, Vector256.GreaterThan(buf[v], h));
            }
            *acc = a;
        }

        private static void Count2(Vector256<int>* buf, int vectors, int lo, int hi, Vector256<int>* acc)
        {
            Vector256<int> l = Vector256.Create(lo), h = Vector256.Create(hi), a = acc[0], b = acc[1];
            for (int v = 0; v < vectors; v++)
            {
                a += Vector256.GreaterThan(buf[v], l);
                b += Vector256.GreaterThan(buf[v], h);
            }
            acc[0] = a; acc[1] = b;
        }

        private void Collect(Vector256<int>* buf, Vector256<int>* hit, int vectors)
        {
            for (int v = 0; v < vectors; v++)
            {
                uint lanes = hit[v].ExtractMostSignificantBits();
                while (lanes != 0)
                {
                    int lane = BitOperations.TrailingZeroCount(lanes);
                    lanes &= lanes - 1;
                    uint u = ((uint*)(buf + v))[lane];
                    int j = 0;
                    while (!((int)u > gLo[j] && (int)u <= gHi[j])) j++;
                    Add(j, u);
                }
            }
        }

        private void Add(int j, uint u)
        {
            lists[j].Add(u);
            _added++;
        }
    }
}
