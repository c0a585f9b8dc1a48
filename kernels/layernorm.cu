// LayerNorm over the last dimension (Cpu/LayerNorm.cs). One warp per row, two passes over the row
// (mean, then the centred variance, which keeps precision for rows with a large mean), biased
// variance, rstd = 1 / sqrt(var + eps). float4 when cols % 4 == 0 and the pointers are aligned.
// Launch: block 256 (8 rows), grid ceil(rows / 8).
// The parameter gradients are deterministic column sums: layernorm_param_grad_partial writes one
// partial per chunk of rows and column_sum_accumulate (reduction.cu) adds them in chunk order.
#include "common.cuh"

__device__ __forceinline__ void layernorm_row(const float* x, const float* gamma, const float* beta, float* y,
                                              float* mean, float* rstd, int row, int cols, float eps, int lane)
{
    bool vec = (cols & 3) == 0 && aligned16(x, gamma, beta, y);
    float s = 0.0f;
    if (vec)
        for (int c = lane; c < (cols >> 2); c += 32)
        {
            float4 v = ((const float4*)x)[c];
            s += (v.x + v.y) + (v.z + v.w);
        }
    else
        for (int c = lane; c < cols; c += 32) s += x[c];
    float mu = warp_sum(s) / cols;

    float q = 0.0f;
    if (vec)
        for (int c = lane; c < (cols >> 2); c += 32)
        {
            float4 v = ((const float4*)x)[c];
            float a = v.x - mu, b = v.y - mu, d = v.z - mu, e = v.w - mu;
            q += (a * a + b * b) + (d * d + e * e);
        }
    else
        for (int c = lane; c < cols; c += 32) { float d = x[c] - mu; q += d * d; }
    float rs = 1.0f / sqrtf(warp_sum(q) / cols + eps);

    if (vec)
        for (int c = lane; c < (cols >> 2); c += 32)
        {
            float4 v = ((const float4*)x)[c], g = ((const float4*)gamma)[c], b = ((const float4*)beta)[c];
            ((float4*)y)[c] = make_float4((v.x - mu) * rs * g.x + b.x, (v.y - mu) * rs * g.y + b.y,
                                          (v.z - mu) * rs * g.z + b.z, (v.w - mu) * rs * g.w + b.w);
        }
    else
        for (int c = lane; c < cols; c += 32) y[c] = (x[c] - mu) * rs * gamma[c] + beta[c];
    if (lane == 0) { mean[row] = mu; rstd[row] = rs; }
}

extern "C" __global__ void layernorm_forward_f32(const float* x, const float* gamma, const float* beta, float* y,
                                                 float* mean, float* rstd, int rows, int cols, float eps)
{
    int row = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    if (row >= rows) return;
    i64 off = (i64)row * cols;
    layernorm_row(x + off, gamma, beta, y + off, mean, rstd, row, cols, eps, threadIdx.x & 31);
}

// Post-LN residual: sum = a + b is written (the backward needs it), then normalised into y.
extern "C" __global__ void add_layernorm_forward_f32(const float* a, const float* b, float* sum, const float* gamma,
                                                     const float* beta, float* y, float* mean, float* rstd,
                                                     int rows, int cols, float eps)
{
    int row = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    if (row >= rows) return;
    int lane = threadIdx.x & 31;
    i64 off = (i64)row * cols;
    const float* ar = a + off; const float* br = b + off; float* sr = sum + off;
    if ((cols & 3) == 0 && aligned16(ar, br, sr))
        for (int c = lane; c < (cols >> 2); c += 32)
        {
            float4 u = ((const float4*)ar)[c], v = ((const float4*)br)[c];
            ((float4*)sr)[c] = make_float4(u.x + v.x, u.y + v.y, u.z + v.z, u.w + v.w);
        }
    else
        for (int c = lane; c < cols; c += 32) sr[c] = ar[c] + br[c];
    __syncwarp();   // the row is re-read by other lanes of this warp
    layernorm_row(sr, gamma, beta, y + off, mean, rstd, row, cols, eps, lane);
}

// dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)) with dxhat = dy * gamma. One warp per row.
extern "C" __global__ void layernorm_backward_dx_f32(const float* dy, const float* x, const float* gamma,
                                                     const float* mean, const float* rstd, float* dx, int rows, int cols)
{
    int row = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    if (row >= rows) return;
    int lane = threadIdx.x & 31;
    i64 off = (i64)row * cols;
    const float* dyr = dy + off; const float* xr = x + off; float* dxr = dx + off;
    float mu = mean[row], rs = rstd[row];
    float s1 = 0.0f, s2 = 0.0f;
    for (int c = lane; c < cols; c += 32)
    {
        float g = dyr[c] * gamma[c];
        s1 += g;
        s2 += g * (xr[c] - mu) * rs;
    }
    s1 = warp_sum(s1) / cols;
    s2 = warp_sum(s2) / cols;
    for (int c = lane; c < cols; c += 32)
    {
        float xhat = (xr[c] - mu) * rs;
        dxr[c] = rs * (dyr[c] * gamma[c] - s1 - xhat * s2);
    }
}

// Launch: block (32, 8), grid (ceil(cols / 32), chunks). Per chunk of rows and column c:
// partialGamma = sum dy * xhat, partialBeta = sum dy; thread row ty takes rows ty, ty+8, ...
extern "C" __global__ void layernorm_param_grad_partial_f32(const float* dy, const float* x, const float* mean,
                                                            const float* rstd, float* partialGamma, float* partialBeta,
                                                            int rows, int cols, int rowsPerChunk)
{
    __shared__ float sg[8][33];
    __shared__ float sb[8][33];
    int c = blockIdx.x * 32 + threadIdx.x;
    int chunk = blockIdx.y;
    int start = chunk * rowsPerChunk;
    int end = min(rows, start + rowsPerChunk);
    float g = 0.0f, b = 0.0f;
    if (c < cols)
        for (int r = start + threadIdx.y; r < end; r += 8)
        {
            i64 i = (i64)r * cols + c;
            float d = dy[i];
            g += d * (x[i] - mean[r]) * rstd[r];
            b += d;
        }
    sg[threadIdx.y][threadIdx.x] = g;
    sb[threadIdx.y][threadIdx.x] = b;
    __syncthreads();
    if (threadIdx.y == 0 && c < cols)
    {
        float tg = 0.0f, tb = 0.0f;
        for (int k = 0; k < 8; k++) { tg += sg[k][threadIdx.x]; tb += sb[k][threadIdx.x]; }
        partialGamma[(i64)chunk * cols + c] = tg;
        partialBeta[(i64)chunk * cols + c] = tb;
    }
}
