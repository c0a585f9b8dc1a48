// Elementwise ops (Cpu/Elementwise.cs): residual add, axpy, scale, and applying a U8 mask.
// Grid-stride loops; float4 loads/stores when every pointer is 16-byte aligned, scalar tail.
// Outputs may alias inputs: every element is read before it is written, by the same thread.
#include "common.cuh"

extern "C" __global__ void add_f32(const float* a, const float* b, float* y, i64 n)
{
    i64 n4 = 0;
    if (aligned16(a, b, y))
    {
        n4 = n >> 2;
        GRID_STRIDE(i, n4)
        {
            float4 va = ((const float4*)a)[i], vb = ((const float4*)b)[i];
            ((float4*)y)[i] = make_float4(va.x + vb.x, va.y + vb.y, va.z + vb.z, va.w + vb.w);
        }
    }
    GRID_STRIDE(j, n - 4 * n4) { i64 i = 4 * n4 + j; y[i] = a[i] + b[i]; }
}

extern "C" __global__ void axpy_f32(float alpha, const float* x, float* y, i64 n)
{
    i64 n4 = 0;
    if (aligned16(x, y))
    {
        n4 = n >> 2;
        GRID_STRIDE(i, n4)
        {
            float4 vx = ((const float4*)x)[i], vy = ((float4*)y)[i];
            vy.x += alpha * vx.x; vy.y += alpha * vx.y; vy.z += alpha * vx.z; vy.w += alpha * vx.w;
            ((float4*)y)[i] = vy;
        }
    }
    GRID_STRIDE(j, n - 4 * n4) { i64 i = 4 * n4 + j; y[i] += alpha * x[i]; }
}

extern "C" __global__ void scale_f32(float* x, float alpha, i64 n)
{
    i64 n4 = 0;
    if (aligned16(x))
    {
        n4 = n >> 2;
        GRID_STRIDE(i, n4)
        {
            float4 v = ((float4*)x)[i];
            v.x *= alpha; v.y *= alpha; v.z *= alpha; v.w *= alpha;
            ((float4*)x)[i] = v;
        }
    }
    GRID_STRIDE(j, n - 4 * n4) { i64 i = 4 * n4 + j; x[i] *= alpha; }
}

// x[i] = +0 where mask[i] == 0. Four mask bytes are read as one word when aligned.
extern "C" __global__ void apply_mask_f32(float* x, const unsigned char* mask, i64 n)
{
    i64 n4 = 0;
    if (aligned16(x) && (((u64)mask) & 3) == 0)
    {
        n4 = n >> 2;
        GRID_STRIDE(i, n4)
        {
            unsigned int m = ((const unsigned int*)mask)[i];
            if (m == 0x01010101u) continue;
            float4 v = ((float4*)x)[i];
            if ((m & 0xffu) == 0) v.x = 0.0f;
            if ((m & 0xff00u) == 0) v.y = 0.0f;
            if ((m & 0xff0000u) == 0) v.z = 0.0f;
            if ((m & 0xff000000u) == 0) v.w = 0.0f;
            ((float4*)x)[i] = v;
        }
    }
    GRID_STRIDE(j, n - 4 * n4) { i64 i = 4 * n4 + j; if (mask[i] == 0) x[i] = 0.0f; }
}
