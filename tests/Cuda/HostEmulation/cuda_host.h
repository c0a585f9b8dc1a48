// A tiny host emulation of the CUDA features kernels/*.cu use, so the kernels' indexing and
// arithmetic can be checked on a machine with no GPU. Every thread of a block is a std::thread;
// blocks run one after another (so function-static memory stands in for __shared__); warp
// shuffles, votes and barriers are std::barrier rendezvous. Slow, and meant for small shapes only.
#pragma once
#include <algorithm>
#include <atomic>
#include <barrier>
#include <cmath>
#include <cstring>
#include <functional>
#include <memory>
#include <thread>
#include <tuple>
#include <vector>

struct dim3 { unsigned int x = 1, y = 1, z = 1; };
struct float4 { float x, y, z, w; };
struct uint4 { unsigned int x, y, z, w; };
static inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }

thread_local dim3 threadIdx, blockIdx;
static dim3 blockDim, gridDim;

#define __global__
#define __device__
#define __forceinline__ inline
#define __shared__ static
#define __restrict__

using std::min;
using std::max;

struct BlockState
{
    std::unique_ptr<std::barrier<>> block;
    std::vector<std::unique_ptr<std::barrier<>>> warps;
    std::vector<unsigned long long> slots;   // one exchange slot per thread
};
static BlockState* g_block;
thread_local int t_linear;

static inline int lane_id() { return t_linear & 31; }
static inline int warp_id() { return t_linear >> 5; }

static inline void __syncthreads() { g_block->block->arrive_and_wait(); }
static inline void __syncwarp(unsigned int = 0xffffffffu) { g_block->warps[warp_id()]->arrive_and_wait(); }

template <typename T>
static inline T exchange(T v, int fromLane)
{
    static_assert(sizeof(T) <= 8);
    unsigned long long bits = 0;
    std::memcpy(&bits, &v, sizeof(T));
    int base = warp_id() * 32;
    g_block->slots[t_linear] = bits;
    __syncwarp();
    unsigned long long got = g_block->slots[base + fromLane];
    __syncwarp();
    T r;
    std::memcpy(&r, &got, sizeof(T));
    return r;
}

template <typename T> static inline T __shfl_xor_sync(unsigned int, T v, int mask) { return exchange(v, lane_id() ^ mask); }
// Lanes below delta keep their own value, as on the device.
template <typename T> static inline T __shfl_up_sync(unsigned int, T v, int delta)
{
    int from = lane_id() - delta;
    return exchange(v, from < 0 ? lane_id() : from);
}

static inline unsigned int __ballot_sync(unsigned int, bool p)
{
    int base = warp_id() * 32;
    g_block->slots[t_linear] = p ? 1 : 0;
    __syncwarp();
    unsigned int bits = 0;
    for (int l = 0; l < 32; l++) if (g_block->slots[base + l]) bits |= 1u << l;
    __syncwarp();
    return bits;
}
static inline bool __any_sync(unsigned int m, bool p) { return __ballot_sync(m, p) != 0; }

static inline int __ffs(unsigned int x) { return __builtin_ffs((int)x); }
static inline unsigned int __umulhi(unsigned int a, unsigned int b) { return (unsigned int)(((unsigned long long)a * b) >> 32); }
static inline float __int_as_float(int i) { float f; std::memcpy(&f, &i, 4); return f; }
static inline int __double2hiint(double d) { long long b; std::memcpy(&b, &d, 8); return (int)(b >> 32); }
static inline int __double2loint(double d) { long long b; std::memcpy(&b, &d, 8); return (int)(unsigned int)b; }
static inline double __hiloint2double(int hi, int lo) { long long b = ((long long)hi << 32) | (unsigned int)lo; double d; std::memcpy(&d, &b, 8); return d; }
static inline int __popc(unsigned int x) { return __builtin_popcount(x); }
static inline unsigned int atomicAdd(unsigned int* p, unsigned int v) { return __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST); }
static inline unsigned long long atomicAdd(unsigned long long* p, unsigned long long v) { return __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST); }
static inline long long atomicMin(long long* p, long long v)
{
    long long seen = __atomic_load_n(p, __ATOMIC_SEQ_CST);
    while (v < seen && !__atomic_compare_exchange_n(p, &seen, v, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) { }
    return seen;
}
static inline int atomicCAS(int* p, int compare, int value) { __atomic_compare_exchange_n(p, &compare, value, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST); return compare; }

// Runs kernel(args...) on grid x block; blockDim.x * blockDim.y must be a multiple of 32.
template <typename... P, typename... A>
static void launch(void (*kernel)(P...), dim3 grid, dim3 block, A... given)
{
    static_assert(sizeof...(P) == sizeof...(A), "argument count");
    auto args = std::make_tuple(P(given)...);
    gridDim = grid;
    blockDim = block;
    int threads = (int)(block.x * block.y);
    for (unsigned int by = 0; by < grid.y; by++)
        for (unsigned int bx = 0; bx < grid.x; bx++)
        {
            BlockState state;
            state.block = std::make_unique<std::barrier<>>(threads);
            for (int w = 0; w < threads / 32; w++) state.warps.push_back(std::make_unique<std::barrier<>>(32));
            state.slots.assign(threads, 0);
            g_block = &state;
            std::vector<std::thread> pool;
            for (int t = 0; t < threads; t++)
                pool.emplace_back([&, t, bx, by] {
                    t_linear = t;
                    threadIdx = {(unsigned int)(t % block.x), (unsigned int)(t / block.x), 0};
                    blockIdx = {bx, by, 0};
                    std::apply(kernel, args);
                    g_block->warps[warp_id()]->arrive_and_drop();   // a finished thread leaves its barriers
                    g_block->block->arrive_and_drop();
                });
            for (auto& th : pool) th.join();
        }
}
