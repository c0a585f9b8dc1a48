// Shared device helpers for every kernel file. NVRTC receives this file as an in-memory header
// (no CUDA headers anywhere), so only builtins are used: __shfl_xor_sync, expf, erff, rsqrtf ...
#pragma once

typedef long long i64;
typedef unsigned long long u64;

#define FULL_MASK 0xffffffffu

// Grid-stride loop over [0, n) with 64-bit indices.
#define GRID_STRIDE(i, n) \
    for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (i64)gridDim.x * blockDim.x)

// Butterfly reductions: every lane ends with the same value, combined in a fixed order.
__device__ __forceinline__ float warp_sum(float v)
{
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(FULL_MASK, v, o);
    return v;
}

__device__ __forceinline__ float warp_max(float v)
{
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(FULL_MASK, v, o));
    return v;
}

__device__ __forceinline__ double warp_sum_f64(double v)
{
    for (int o = 16; o > 0; o >>= 1)
    {
        int hi = __shfl_xor_sync(FULL_MASK, __double2hiint(v), o);
        int lo = __shfl_xor_sync(FULL_MASK, __double2loint(v), o);
        v += __hiloint2double(hi, lo);
    }
    return v;
}

// Block-wide reductions for blockDim.x a multiple of 32 (at most 1024). `scratch` holds 32
// values; the result is returned to every thread. Fixed shape, so the order never changes.
__device__ __forceinline__ float block_sum(float v, float* scratch)
{
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    v = warp_sum(v);
    __syncthreads();
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    v = lane < warps ? scratch[lane] : 0.0f;
    return warp_sum(v);
}

__device__ __forceinline__ float block_max(float v, float* scratch)
{
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    v = warp_max(v);
    __syncthreads();
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    v = lane < warps ? scratch[lane] : -__int_as_float(0x7f800000);
    return warp_max(v);
}

__device__ __forceinline__ double block_sum_f64(double v, double* scratch)
{
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    v = warp_sum_f64(v);
    __syncthreads();
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    v = lane < warps ? scratch[lane] : 0.0;
    return warp_sum_f64(v);
}

// True when every pointer is 16-byte aligned, so float4 loads and stores are legal.
__device__ __forceinline__ bool aligned16(const void* a, const void* b = 0, const void* c = 0, const void* d = 0)
{
    return (((u64)a | (u64)b | (u64)c | (u64)d) & 15) == 0;
}

// Records the first error code; the host reports it at its next synchronisation (a kernel cannot throw).
__device__ __forceinline__ void raise_error(int* status, int code)
{
    atomicCAS(status, 0, code);
}
