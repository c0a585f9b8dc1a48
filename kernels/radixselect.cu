// Exact radix select of |w| on the GPU (engine/Sparsity/RadixSelect.cs is the CPU twin): keys are
// the float bits & 0x7fffffff, which order like |w| for finite floats; three digits of 11, 11 and
// 9 bits (bits 30..20, 19..9, 8..0), most significant first. Every pass is one read of the span:
//   pass 1  radix_hist_first   histogram of the top digit (block histograms in shared memory
//                              merged with global integer atomics) + first non-finite index
//   select  radix_select_digit one warp per level finds the bucket holding its rank, entirely on
//                              the device, and updates the level's prefix / below / remaining
//   pass 2,3 radix_hist_next   filter by each level's prefix and histogram the next digit into
//                              that prefix's sub-histogram (levels sharing a prefix share one)
// The state lives in one u64 device buffer (layout below); the host reads it back once, at the end.
// Integer atomics only, so every count is exact and independent of scheduling.
#include "common.cuh"

#define RS_MAX_LEVELS 16
#define RS_ABS 0x7fffffffu
#define RS_NONFINITE 0x7f800000u
#define RS_SHARED_COUNTERS 10240   // 40 KiB of u32 block counters: 5 sub-histograms of 2048, 20 of 512

// State layout (u64 words):
//   [0]            number of distinct prefixes (sub-histogram slots) for the next pass
//   [1 .. 16]      the slots' prefixes
//   [17]           first non-finite index (host sets it to n; atomicMin lowers it)
//   [32 + 8j + 0]  level j: rank still to find inside the current bucket
//   [32 + 8j + 1]  level j: keys below the current bucket
//   [32 + 8j + 2]  level j: prefix (the digits chosen so far)
//   [32 + 8j + 3]  level j: keys in the chosen bucket (after the last pass: keys equal to the key)
//   [32 + 8j + 4]  level j: its slot in the next pass
#define RS_NSLOTS 0
#define RS_SLOT_PREFIX 1
#define RS_FIRST_BAD 17
#define RS_LEVEL(j) (32 + 8 * (j))
#define RS_STATE_WORDS (32 + 8 * RS_MAX_LEVELS)

// Calls visit(i, key) for every i in [0, n), grid-strided, with 16-byte loads when keys is aligned
// (the span usually is; a view at an odd offset takes the scalar loop).
template <typename Visit>
__device__ __forceinline__ void rs_for_each(const unsigned int* keys, i64 n, Visit visit)
{
    i64 stride = (i64)gridDim.x * blockDim.x, t = (i64)blockIdx.x * blockDim.x + threadIdx.x, done = 0;
    if (((u64)keys & 15) == 0)
    {
        const uint4* k4 = (const uint4*)keys;
        i64 vectors = n / 4;
        for (i64 v = t; v < vectors; v += stride)
        {
            uint4 q = k4[v];
            visit(4 * v, q.x); visit(4 * v + 1, q.y); visit(4 * v + 2, q.z); visit(4 * v + 3, q.w);
        }
        done = vectors * 4;
    }
    for (i64 i = done + t; i < n; i += stride) visit(i, keys[i]);
}

__device__ __forceinline__ int rs_shift(int pass) { return pass == 0 ? 20 : pass == 1 ? 9 : 0; }
__device__ __forceinline__ int rs_bits(int pass) { return pass == 2 ? 9 : 11; }

// Launch: any grid, block 256. hist (2048 u64) must be zero. state[RS_FIRST_BAD] must hold n.
extern "C" __global__ void radix_hist_first(const unsigned int* keys, i64 n, u64* hist, u64* state)
{
    __shared__ unsigned int counts[2048];
    for (int b = threadIdx.x; b < 2048; b += blockDim.x) counts[b] = 0;
    __syncthreads();
    i64 bad = n;
    rs_for_each(keys, n, [&](i64 i, unsigned int key) {
        unsigned int u = key & RS_ABS;
        if (u >= RS_NONFINITE) { if (i < bad) bad = i; return; }
        atomicAdd(&counts[u >> 20], 1u);
    });
    if (bad < n) atomicMin((long long*)&state[RS_FIRST_BAD], (long long)bad);
    __syncthreads();
    for (int b = threadIdx.x; b < 2048; b += blockDim.x)
        if (counts[b] != 0) atomicAdd(&hist[b], (u64)counts[b]);
}

// Launch: any grid, block 256. Pass 1 or 2: keys whose bits above the pass's digit equal a slot's
// prefix count in that slot's sub-histogram (hist: nslots x buckets u64, zeroed). The first slots
// count in shared memory; any beyond RS_SHARED_COUNTERS go straight to global atomics.
extern "C" __global__ void radix_hist_next(const unsigned int* keys, i64 n, const u64* state, int pass, u64* hist)
{
    __shared__ unsigned int counts[RS_SHARED_COUNTERS];
    __shared__ unsigned int prefixes[RS_MAX_LEVELS];
    int nslots = (int)state[RS_NSLOTS];
    int bits = rs_bits(pass), buckets = 1 << bits, digitShift = rs_shift(pass), prefixShift = rs_shift(pass - 1);
    unsigned int digitMask = (unsigned int)buckets - 1;
    int sharedSlots = min(nslots, RS_SHARED_COUNTERS >> bits);
    for (int b = threadIdx.x; b < sharedSlots * buckets; b += blockDim.x) counts[b] = 0;
    if ((int)threadIdx.x < nslots) prefixes[threadIdx.x] = (unsigned int)state[RS_SLOT_PREFIX + threadIdx.x];
    __syncthreads();
    rs_for_each(keys, n, [&](i64, unsigned int key) {
        unsigned int u = key & RS_ABS;
        unsigned int p = u >> prefixShift;
        for (int s = 0; s < nslots; s++)
        {
            if (prefixes[s] != p) continue;
            unsigned int d = (u >> digitShift) & digitMask;
            if (s < sharedSlots) atomicAdd(&counts[s * buckets + d], 1u);
            else atomicAdd(&hist[(i64)s * buckets + d], (u64)1);
            break;
        }
    });
    __syncthreads();
    for (int b = threadIdx.x; b < sharedSlots * buckets; b += blockDim.x)
        if (counts[b] != 0) atomicAdd(&hist[b], (u64)counts[b]);
}

// Launch: grid 1, block 32 * levels (levels <= RS_MAX_LEVELS). Warp j walks level j's
// sub-histogram: each lane sums buckets/32 consecutive buckets, an inclusive warp scan finds the
// lane whose range holds the rank, and that lane walks its range. Then one thread regroups the
// levels by their new prefixes into the next pass's slots.
extern "C" __global__ void radix_select_digit(const u64* hist, u64* state, int levels, int pass)
{
    int lane = threadIdx.x & 31, j = threadIdx.x >> 5;
    int bits = rs_bits(pass), buckets = 1 << bits, per = buckets / 32;
    if (j < levels)
    {
        u64* L = state + RS_LEVEL(j);
        const u64* h = hist + (i64)L[4] * buckets;
        u64 remaining = L[0];
        u64 mine = 0;
        for (int b = lane * per; b < (lane + 1) * per; b++) mine += h[b];
        u64 inclusive = mine;
        for (int o = 1; o < 32; o <<= 1)
        {
            u64 from = __shfl_up_sync(FULL_MASK, inclusive, o);
            if (lane >= o) inclusive += from;
        }
        unsigned int over = __ballot_sync(FULL_MASK, inclusive > remaining);
        // No lane over: the rank lies among non-finite keys, which the host reports as an error.
        if (over != 0 && lane == __ffs(over) - 1)
        {
            u64 cum = inclusive - mine;
            int b = lane * per;
            while (cum + h[b] <= remaining) { cum += h[b]; b++; }
            L[0] = remaining - cum;
            L[1] += cum;
            L[2] = (L[2] << bits) | (u64)b;
            L[3] = h[b];
        }
    }
    __syncthreads();
    if (threadIdx.x == 0)
    {
        int nslots = 0;
        for (int l = 0; l < levels; l++)
        {
            u64* L = state + RS_LEVEL(l);
            int s = 0;
            while (s < nslots && state[RS_SLOT_PREFIX + s] != L[2]) s++;
            if (s == nslots) state[RS_SLOT_PREFIX + nslots++] = L[2];
            L[4] = (u64)s;
        }
        state[RS_NSLOTS] = (u64)nslots;
    }
}

// Keep mask. Tiles of RS_TILE consecutive keys give the ties a deterministic order by position:
// radix_count_equal counts the keys equal to the threshold per tile, radix_scan_tiles turns the
// counts into exclusive prefixes, and radix_keep_mask ranks each equal key inside its tile by warp
// ballots, so key i's tie rank is its position among the equal keys of the whole span.
#define RS_TILE 4096

// Launch: any grid, block 256. counts[t] = keys of tile t equal to `key`.
extern "C" __global__ void radix_count_equal(const unsigned int* keys, i64 n, unsigned int key, unsigned int* counts)
{
    __shared__ unsigned int warpCounts[32];
    i64 tiles = (n + RS_TILE - 1) / RS_TILE;
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    for (i64 t = blockIdx.x; t < tiles; t += gridDim.x)
    {
        i64 start = t * RS_TILE, end = min(n, start + RS_TILE);
        unsigned int c = 0;
        for (i64 i = start + threadIdx.x; i < end; i += blockDim.x) c += (keys[i] & RS_ABS) == key ? 1u : 0u;
        for (int o = 16; o > 0; o >>= 1) c += __shfl_xor_sync(FULL_MASK, c, o);
        __syncthreads();
        if (lane == 0) warpCounts[warp] = c;
        __syncthreads();
        if (threadIdx.x == 0)
        {
            unsigned int total = 0;
            for (int w = 0; w < warps; w++) total += warpCounts[w];
            counts[t] = total;
        }
    }
}

// Launch: grid 1, block 1024. before[t] = sum of counts[0 .. t-1] (u64), for tiles tiles. Thread
// r owns a contiguous run of tiles; run totals are scanned in shared memory.
extern "C" __global__ void radix_scan_tiles(const unsigned int* counts, u64* before, i64 tiles)
{
    __shared__ u64 runTotals[1024];
    i64 per = (tiles + blockDim.x - 1) / blockDim.x;
    i64 start = (i64)threadIdx.x * per, end = min(tiles, start + per);
    u64 s = 0;
    for (i64 t = start; t < end; t++) s += counts[t];
    runTotals[threadIdx.x] = s;
    __syncthreads();
    if (threadIdx.x == 0)
    {
        u64 acc = 0;
        for (int r = 0; r < (int)blockDim.x; r++) { u64 v = runTotals[r]; runTotals[r] = acc; acc += v; }
    }
    __syncthreads();
    u64 acc = runTotals[threadIdx.x];
    for (i64 t = start; t < end; t++) { before[t] = acc; acc += counts[t]; }
}

// Launch: any grid, block 256. keep[i] = |w| bits > key, or == key and not among the first
// tieBudget keys equal to key by position. With before == null the equal keys are decided together:
// all pruned when tieBudget > 0, all kept otherwise.
extern "C" __global__ void radix_keep_mask(const unsigned int* keys, i64 n, unsigned char* keep, unsigned int key,
                                           i64 tieBudget, const u64* before)
{
    __shared__ unsigned int warpCounts[32];
    if (before == 0)
    {
        bool pruneEqual = tieBudget > 0;
        GRID_STRIDE(i, n)
        {
            unsigned int u = keys[i] & RS_ABS;
            keep[i] = (unsigned char)(u > key || (u == key && !pruneEqual) ? 1 : 0);
        }
        return;
    }
    i64 tiles = (n + RS_TILE - 1) / RS_TILE;
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    for (i64 t = blockIdx.x; t < tiles; t += gridDim.x)
    {
        i64 start = t * RS_TILE, end = min(n, start + RS_TILE);
        i64 rank = (i64)before[t];
        // Rounds of blockDim.x keys: rank inside the round = equal keys of earlier warps + earlier lanes.
        for (i64 base = start; base < end; base += blockDim.x)
        {
            i64 i = base + threadIdx.x;
            unsigned int u = i < end ? keys[i] & RS_ABS : 0u;
            bool eq = i < end && u == key;
            unsigned int votes = __ballot_sync(FULL_MASK, eq);
            __syncthreads();
            if (lane == 0) warpCounts[warp] = __popc(votes);
            __syncthreads();
            i64 myRank = rank + __popc(votes & ((1u << lane) - 1u));
            i64 roundTotal = 0;
            for (int w = 0; w < warps; w++)
            {
                if (w < warp) myRank += warpCounts[w];
                roundTotal += warpCounts[w];
            }
            if (i < end) keep[i] = (unsigned char)(u > key || (eq && myRank >= tieBudget) ? 1 : 0);
            rank += roundTotal;
        }
    }
}

// N:M keep mask (Sparsity/NMMasks.cs). Every prunable matrix's width is a multiple of m and the
// matrices tile the span, so the groups are simply the span's consecutive runs of m keys. One
// thread per key ranks it inside its group in the order (|w| bits, position); the drop lowest
// ranks are pruned. O(m) reads per key, from cache. firstBad (host sets it to n) gets the lowest
// non-finite index.
// Launch: any grid, block 256.
extern "C" __global__ void nm_keep_mask(const unsigned int* keys, i64 n, int m, int drop, unsigned char* keep, long long* firstBad)
{
    i64 bad = n;
    GRID_STRIDE(i, n)
    {
        unsigned int u = keys[i] & RS_ABS;
        if (u >= RS_NONFINITE && i < bad) bad = i;
        i64 group = i - i % m;
        int rank = 0;
        for (int j = 0; j < m; j++)
        {
            unsigned int v = keys[group + j] & RS_ABS;
            rank += (v < u || (v == u && group + j < i)) ? 1 : 0;
        }
        keep[i] = (unsigned char)(rank >= drop ? 1 : 0);
    }
    if (bad < n) atomicMin(firstBad, (long long)bad);
}
