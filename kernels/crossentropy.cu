// Fused softmax cross-entropy (Cpu/CrossEntropy.cs): one block per row, block-wide max and
// sum-of-exponentials with warp shuffles, never materialising the softmax.
// Launch: grid rows, block 256 (any multiple of 32 up to 1024).
#include "common.cuh"

#define CROSSENTROPY_BAD_TARGET 2

// Returns (max, sum of exp(x - max)) of one row to every thread of the block.
__device__ __forceinline__ void row_logsumexp_parts(const float* x, int classes, float* scratch, float* mx, float* sum)
{
    float m = -__int_as_float(0x7f800000);
    for (int j = threadIdx.x; j < classes; j += blockDim.x) m = fmaxf(m, x[j]);
    m = block_max(m, scratch);
    float s = 0.0f;
    for (int j = threadIdx.x; j < classes; j += blockDim.x) s += expf(x[j] - m);
    *sum = block_sum(s, scratch);
    *mx = m;
}

extern "C" __global__ void crossentropy_forward_f32(const float* logits, const int* targets, float* losses, int rows,
                                                    int classes, int ignoreIndex, int* status)
{
    __shared__ float scratch[32];
    int r = blockIdx.x;
    int t = targets[r];
    if (t == ignoreIndex) { if (threadIdx.x == 0) losses[r] = 0.0f; return; }
    if (t < 0 || t >= classes)
    {
        if (threadIdx.x == 0) { raise_error(status, CROSSENTROPY_BAD_TARGET); losses[r] = __int_as_float(0x7fc00000); }
        return;
    }
    const float* x = logits + (i64)r * classes;
    float mx, sum;
    row_logsumexp_parts(x, classes, scratch, &mx, &sum);
    if (threadIdx.x == 0) losses[r] = logf(sum) + mx - x[t];
}

// dlogits[r, :] = scale * (softmax(logits[r, :]) - onehot(targets[r])); zero for ignored rows.
// dlogits may alias logits: every read of the row finishes (block barrier) before the first write.
extern "C" __global__ void crossentropy_backward_f32(const float* logits, const int* targets, float* dlogits, int rows,
                                                     int classes, int ignoreIndex, float scale, int* status)
{
    __shared__ float scratch[32];
    int r = blockIdx.x;
    int t = targets[r];
    float* d = dlogits + (i64)r * classes;
    if (t == ignoreIndex)
    {
        for (int j = threadIdx.x; j < classes; j += blockDim.x) d[j] = 0.0f;
        return;
    }
    if (t < 0 || t >= classes)
    {
        if (threadIdx.x == 0) raise_error(status, CROSSENTROPY_BAD_TARGET);
        return;
    }
    const float* x = logits + (i64)r * classes;
    float mx, sum;
    row_logsumexp_parts(x, classes, scratch, &mx, &sum);
    float inv = 1.0f / sum;
    for (int j = threadIdx.x; j < classes; j += blockDim.x)
        d[j] = scale * (expf(x[j] - mx) * inv - (j == t ? 1.0f : 0.0f));
}
