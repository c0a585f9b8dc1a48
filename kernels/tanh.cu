// tanh for the BERT pooler (Cpu/Tanh.cs): y = tanh(x); backward from the output, dx = dy * (1 - y^2).
#include "common.cuh"

extern "C" __global__ void tanh_forward_f32(const float* x, float* y, i64 n)
{
    GRID_STRIDE(i, n) { y[i] = tanhf(x[i]); }
}

extern "C" __global__ void tanh_backward_f32(const float* y, const float* dy, float* dx, i64 n)
{
    GRID_STRIDE(i, n) { float v = y[i]; dx[i] = dy[i] * (1.0f - v * v); }
}
