// Bias (Cpu/Bias.cs). The gradient is a column sum over rows, done deterministically in two fixed
// stages with no atomics: bias_grad_partial sums each chunk of rows per column, then
// column_sum_accumulate (reduction.cu) adds the chunk sums in chunk order.
#include "common.cuh"

// y[r,c] += bias[c]; float4 when cols is a multiple of 4 and both pointers are aligned.
extern "C" __global__ void add_bias_f32(float* y, const float* bias, int rows, int cols)
{
    i64 n = (i64)rows * cols;
    if ((cols & 3) == 0 && aligned16(y, bias))
    {
        int cols4 = cols >> 2;
        GRID_STRIDE(i, n >> 2)
        {
            float4 b = ((const float4*)bias)[i % cols4];
            float4 v = ((float4*)y)[i];
            v.x += b.x; v.y += b.y; v.z += b.z; v.w += b.w;
            ((float4*)y)[i] = v;
        }
        return;
    }
    GRID_STRIDE(i, n) y[i] += bias[i % cols];
}

// Launch: block (32, 8), grid (ceil(cols / 32), chunks). partial[chunk, c] = sum of dy[r, c] over
// rows r of the chunk: thread row ty takes rows ty, ty+8, ..., then the 8 sums are added in order.
extern "C" __global__ void bias_grad_partial_f32(const float* dy, float* partial, int rows, int cols, int rowsPerChunk)
{
    __shared__ float sums[8][33];
    int c = blockIdx.x * 32 + threadIdx.x;
    int chunk = blockIdx.y;
    int start = chunk * rowsPerChunk;
    int end = min(rows, start + rowsPerChunk);
    float s = 0.0f;
    if (c < cols)
        for (int r = start + threadIdx.y; r < end; r += 8) s += dy[(i64)r * cols + c];
    sums[threadIdx.y][threadIdx.x] = s;
    __syncthreads();
    if (threadIdx.y == 0 && c < cols)
    {
        float t = 0.0f;
        for (int k = 0; k < 8; k++) t += sums[k][threadIdx.x];
        partial[(i64)chunk * cols + c] = t;
    }
}
