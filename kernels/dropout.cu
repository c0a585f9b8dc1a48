// Inverted dropout (Cpu/Dropout.cs): element i is kept when Philox.Uniform(seed, stream, counter + i)
// >= p and then divided by (1 - p). Forward and backward are the same kernel (the mask is
// regenerated, never stored). One thread per Philox block, i.e. per four consecutive counters.
#include "common.cuh"
#include "philox.cuh"

extern "C" __global__ void dropout_f32(const float* x, float* y, float p, u64 seed, u64 stream, u64 counter, i64 n)
{
    if (n <= 0) return;
    u64 first = counter >> 2;
    u64 blocks = ((counter + (u64)n - 1) >> 2) - first + 1;
    float keep = 1.0f - p;
    GRID_STRIDE(b, (i64)blocks)
    {
        u64 block = first + (u64)b;
        philox_words r = philox_block(seed, stream, block);
#pragma unroll
        for (int w = 0; w < 4; w++)
        {
            u64 e = block * 4 + w;
            if (e < counter || e - counter >= (u64)n) continue;
            i64 i = (i64)(e - counter);
            float u = philox_to_uniform(r.w[w]);
            y[i] = u >= p ? x[i] / keep : 0.0f;
        }
    }
}
