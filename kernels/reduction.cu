// Reductions (Cpu/Reduction.cs). Sum and sum of squares accumulate in double in a fixed order: a
// fixed grid of REDUCE_BLOCKS blocks of 256 threads each writes one partial, then one block adds
// the partials. The launch shape is part of the contract: the host always uses these numbers.
#include "common.cuh"

#define REDUCE_BLOCKS 256

// Launch: grid REDUCE_BLOCKS, block 256. partials[block] = sum of x (or x^2) over a grid stride.
extern "C" __global__ void sum_partial_f64(const float* x, double* partials, i64 n, int square)
{
    __shared__ double scratch[32];
    double s = 0.0;
    GRID_STRIDE(i, n)
    {
        double v = x[i];
        s += square ? v * v : v;
    }
    s = block_sum_f64(s, scratch);
    if (threadIdx.x == 0) partials[blockIdx.x] = s;
}

// Launch: grid 1, block 256. result[0] = (float) sum of the partials.
extern "C" __global__ void sum_finish_f64(const double* partials, int count, float* result)
{
    __shared__ double scratch[32];
    double s = 0.0;
    for (int i = threadIdx.x; i < count; i += blockDim.x) s += partials[i];
    s = block_sum_f64(s, scratch);
    if (threadIdx.x == 0) result[0] = (float)s;
}

// out[c] += sum over k of partial[k, c], in order k = 0..chunks-1 (bias and LayerNorm parameter
// gradients): deterministic for any launch shape, since each column has one owner thread.
extern "C" __global__ void column_sum_accumulate_f32(const float* partial, float* out, int chunks, int cols)
{
    GRID_STRIDE(c, cols)
    {
        float s = 0.0f;
        for (int k = 0; k < chunks; k++) s += partial[(i64)k * cols + c];
        out[c] += s;
    }
}
