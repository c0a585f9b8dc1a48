// GELU, erf form (Cpu/Gelu.cs): y = x * Phi(x) with Phi(x) = 0.5 * (1 + erf(x / sqrt 2)).
// float4 when aligned; y may alias x and dx may alias dy.
#include "common.cuh"

#define INV_SQRT2 0.70710678118654752f
#define INV_SQRT_2PI 0.39894228040143268f

__device__ __forceinline__ float gelu(float x) { return 0.5f * x * (1.0f + erff(x * INV_SQRT2)); }

// d/dx [x Phi(x)] = Phi(x) + x phi(x)
__device__ __forceinline__ float gelu_grad(float x)
{
    float cdf = 0.5f * (1.0f + erff(x * INV_SQRT2));
    float pdf = INV_SQRT_2PI * expf(-0.5f * x * x);
    return cdf + x * pdf;
}

extern "C" __global__ void gelu_forward_f32(const float* x, float* y, i64 n)
{
    i64 n4 = 0;
    if (aligned16(x, y))
    {
        n4 = n >> 2;
        GRID_STRIDE(i, n4)
        {
            float4 v = ((const float4*)x)[i];
            ((float4*)y)[i] = make_float4(gelu(v.x), gelu(v.y), gelu(v.z), gelu(v.w));
        }
    }
    GRID_STRIDE(j, n - 4 * n4) { i64 i = 4 * n4 + j; y[i] = gelu(x[i]); }
}

extern "C" __global__ void gelu_backward_f32(const float* x, const float* dy, float* dx, i64 n)
{
    i64 n4 = 0;
    if (aligned16(x, dy, dx))
    {
        n4 = n >> 2;
        GRID_STRIDE(i, n4)
        {
            float4 v = ((const float4*)x)[i], g = ((const float4*)dy)[i];
            ((float4*)dx)[i] = make_float4(g.x * gelu_grad(v.x), g.y * gelu_grad(v.y), g.z * gelu_grad(v.z), g.w * gelu_grad(v.w));
        }
    }
    GRID_STRIDE(j, n - 4 * n4) { i64 i = 4 * n4 + j; dx[i] = dy[i] * gelu_grad(x[i]); }
}
