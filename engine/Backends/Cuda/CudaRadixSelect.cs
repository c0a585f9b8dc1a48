using NativeSparsity.Engine.Backends.Cuda.Native;
using NativeSparsity.Engine.Tensors;

namespace NativeSparsity.Engine.Backends.Cuda;

// Radix select of |w| and the keep mask on the device (kernels/radixselect.cu), for
// Sparsity/CudaMagnitudeThreshold.cs. Not part of IBackend: only the sparsity core calls it.
public sealed unsafe partial class CudaBackend
{
    /// <summary>Levels one selection handles (RS_MAX_LEVELS); longer sweeps run in groups.</summary>
    internal const int RadixMaxLevels = 16;
    private const int RadixStateWords = 32 + 8 * RadixMaxLevels;   // RS_STATE_WORDS
    private const int RadixTile = 4096;                            // RS_TILE
    private const int RadixFirstBad = 17;                          // RS_FIRST_BAD

    /// <summary>One rank's answer: its key (|w| bits), how many keys are smaller, how many equal.</summary>
    internal readonly record struct RadixSelection(uint Key, long Below, long Equal);

    /// <summary>
    /// For each 0-based rank (in [0, n)), the key of that rank among (bits[i] &amp; 0x7fffffff),
    /// i.e. |w| as float bits: three histogram passes and three on-device selects per group of
    /// <see cref="RadixMaxLevels"/> ranks, then one read-back of the state. <paramref name="firstBad"/>
    /// is the lowest index of a non-finite weight, or n; the selections are meaningless when it is below n.
    /// </summary>
    internal RadixSelection[] RadixSelect(Tensor bits, ReadOnlySpan<long> ranks, out long firstBad)
    {
        MakeCurrent();
        Expect(bits, DType.F32, nameof(bits));
        long n = bits.Length;
        if (n <= 0) throw new ArgumentException("cannot select from an empty span", nameof(bits));
        foreach (long r in ranks)
            if (r < 0 || r >= n) throw new ArgumentOutOfRangeException(nameof(ranks), r, $"rank must lie in [0, {n})");
        var result = new RadixSelection[ranks.Length];
        firstBad = n;
        var state = Scratch(RadixStateWords * 8L, out long stateReserved);
        var hist = Scratch(RadixMaxLevels * 2048L * 8, out long histReserved);
        var host = new ulong[RadixStateWords];
        try
        {
            for (int first = 0; first < ranks.Length; first += RadixMaxLevels)
            {
                int levels = Math.Min(RadixMaxLevels, ranks.Length - first);
                Array.Clear(host);
                host[0] = 1;                       // one slot (prefix 0) for pass 1
                host[RadixFirstBad] = (ulong)n;
                for (int j = 0; j < levels; j++) host[32 + 8 * j] = (ulong)ranks[first + j];
                fixed (ulong* h = host)
                    CudaDriver.Check(CudaDriver.cuMemcpyHtoDAsync(state, h, (nuint)(host.Length * 8), _stream));
                for (int pass = 0; pass < 3; pass++)
                {
                    long counters = pass == 0 ? 2048 : (long)levels * (pass == 2 ? 512 : 2048);
                    CudaDriver.Check(CudaDriver.cuMemsetD32Async(hist, 0, (nuint)(2 * counters), _stream));
                    if (pass == 0)
                        Launch("radixselect.cu", "radix_hist_first", (RadixHistogramGrid(n), 1), (256, 1),
                            Arg.Ptr(Ptr(bits)), Arg.I64(n), Arg.Ptr(hist), Arg.Ptr(state));
                    else
                        Launch("radixselect.cu", "radix_hist_next", (RadixHistogramGrid(n), 1), (256, 1),
                            Arg.Ptr(Ptr(bits)), Arg.I64(n), Arg.Ptr(state), Arg.I32(pass), Arg.Ptr(hist));
                    Launch("radixselect.cu", "radix_select_digit", (1, 1), ((uint)(32 * levels), 1),
                        Arg.Ptr(hist), Arg.Ptr(state), Arg.I32(levels), Arg.I32(pass));
                }
                fixed (ulong* h = host)
                    CudaDriver.Check(CudaDriver.cuMemcpyDtoHAsync(h, state, (nuint)(host.Length * 8), _stream));
                Synchronize();
                firstBad = Math.Min(firstBad, (long)host[RadixFirstBad]);
                for (int j = 0; j < levels; j++)
                {
                    int at = 32 + 8 * j;
                    result[first + j] = new RadixSelection((uint)host[at + 2], (long)host[at + 1], (long)host[at + 3]);
                }
            }
        }
        finally
        {
            _allocator.Free(state, stateReserved);
            _allocator.Free(hist, histReserved);
        }
        return result;
    }

    /// <summary>
    /// Four blocks per SM for the histogram passes: all resident at once (hist_next's 40 KiB of
    /// shared counters allow five per SM), and fewer blocks means fewer block histograms merged
    /// into global memory by atomics. Not yet tuned on a GPU.
    /// </summary>
    private uint RadixHistogramGrid(long n) => Math.Min(GridFor(n), (uint)MultiprocessorCount * 4);

    /// <summary>
    /// keep[i] = 0 for the <paramref name="pruned"/> smallest keys in the order (key, index): every
    /// key below <paramref name="key"/> and the first (pruned - below) equal to it by position; 1 otherwise.
    /// </summary>
    internal void RadixKeepMask(Tensor bits, Tensor keep, uint key, long below, long equal, long pruned)
    {
        MakeCurrent();
        Expect(bits, DType.F32, nameof(bits)); Expect(keep, DType.U8, nameof(keep)); SameLength(bits, keep, nameof(bits), nameof(keep));
        long n = bits.Length;
        if (n == 0) return;
        long tiesPruned = pruned == 0 ? 0 : pruned - below;
        if (tiesPruned < 0 || tiesPruned > equal)
            throw new InvalidOperationException($"inconsistent selection: {pruned} to prune, {below} below the threshold, {equal} equal to it");
        // Only a partial tie needs the positions of the equal keys.
        bool partial = tiesPruned > 0 && tiesPruned < equal;
        long tiles = (n + RadixTile - 1) / RadixTile;
        CuDevicePtr counts = default, before = default;
        long countsReserved = 0, beforeReserved = 0;
        if (partial)
        {
            counts = Scratch(tiles * 4, out countsReserved);
            before = Scratch(tiles * 8, out beforeReserved);
            Launch("radixselect.cu", "radix_count_equal", (GridFor(n, RadixTile), 1), (256, 1),
                Arg.Ptr(Ptr(bits)), Arg.I64(n), Arg.I32((int)key), Arg.Ptr(counts));
            Launch("radixselect.cu", "radix_scan_tiles", (1, 1), (1024, 1), Arg.Ptr(counts), Arg.Ptr(before), Arg.I64(tiles));
        }
        uint grid = partial ? GridFor(n, RadixTile) : GridFor(n);
        Launch("radixselect.cu", "radix_keep_mask", (grid, 1), (256, 1),
            Arg.Ptr(Ptr(bits)), Arg.I64(n), Arg.Ptr(Ptr(keep)), Arg.I32((int)key), Arg.I64(tiesPruned),
            partial ? Arg.Ptr(before) : Arg.Null);
        // Freeing right after the launches is safe: the allocator's blocks are reused on the same stream.
        if (partial)
        {
            _allocator.Free(counts, countsReserved);
            _allocator.Free(before, beforeReserved);
        }
    }

    /// <summary>
    /// N:M keep mask over consecutive groups of <paramref name="m"/> keys (the caller checks that
    /// groups do not straddle rows): in each, the <paramref name="drop"/> smallest in the order
    /// (|w|, position) are pruned. Returns the lowest index of a non-finite weight, or n.
    /// </summary>
    internal long NMKeepMask(Tensor bits, Tensor keep, int m, int drop)
    {
        MakeCurrent();
        Expect(bits, DType.F32, nameof(bits)); Expect(keep, DType.U8, nameof(keep)); SameLength(bits, keep, nameof(bits), nameof(keep));
        long n = bits.Length;
        if (m < 2 || drop < 1 || drop >= m || n % m != 0)
            throw new ArgumentException($"N:M keep mask: m = {m}, drop = {drop} over {n} weights (need 1 <= drop < m and n a multiple of m)");
        if (n == 0) return 0;
        var firstBad = Scratch(8, out long reserved);
        try
        {
            long bad = n;
            CudaDriver.Check(CudaDriver.cuMemcpyHtoDAsync(firstBad, &bad, 8, _stream));
            Launch("radixselect.cu", "nm_keep_mask", (GridFor(n), 1), (256, 1),
                Arg.Ptr(Ptr(bits)), Arg.I64(n), Arg.I32(m), Arg.I32(drop), Arg.Ptr(Ptr(keep)), Arg.Ptr(firstBad));
            CudaDriver.Check(CudaDriver.cuMemcpyDtoHAsync(&bad, firstBad, 8, _stream));
            Synchronize();
            return bad;
        }
        finally
        {
            _allocator.Free(firstBad, reserved);
        }
    }
}
