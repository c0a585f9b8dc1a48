// Attention layout changes and the masked softmax (Cpu/Attention.cs).
// Head permutations move float4 units when headDim % 4 == 0 and the pointers are aligned.
#include "common.cuh"

// Iterates over qkv [batch, seq, 3, heads, d] (coalesced) and maps to [3][batch, heads, seq, d].
// Units of T: d counts T's per head (headDim or headDim / 4).
template <typename T, bool Backward>
__device__ __forceinline__ void split_qkv(T* qkv, T* q, T* k, T* v, int batch, int seq, int heads, int d)
{
    i64 total = (i64)batch * seq * 3 * heads * d;
    GRID_STRIDE(i, total)
    {
        i64 t = i;
        int e = (int)(t % d); t /= d;
        int h = (int)(t % heads); t /= heads;
        int which = (int)(t % 3); t /= 3;
        int s = (int)(t % seq);
        int b = (int)(t / seq);
        T* part = which == 0 ? q : which == 1 ? k : v;
        i64 j = (((i64)b * heads + h) * seq + s) * d + e;
        if (Backward) qkv[i] = part[j]; else part[j] = qkv[i];
    }
}

extern "C" __global__ void split_qkv_heads_f32(const float* qkv, float* q, float* k, float* v,
                                               int batch, int seq, int heads, int headDim)
{
    if ((headDim & 3) == 0 && aligned16(qkv, q, k, v))
        split_qkv<float4, false>((float4*)qkv, (float4*)q, (float4*)k, (float4*)v, batch, seq, heads, headDim >> 2);
    else
        split_qkv<float, false>((float*)qkv, q, k, v, batch, seq, heads, headDim);
}

extern "C" __global__ void split_qkv_heads_backward_f32(const float* dq, const float* dk, const float* dv, float* dqkv,
                                                        int batch, int seq, int heads, int headDim)
{
    if ((headDim & 3) == 0 && aligned16(dqkv, dq, dk, dv))
        split_qkv<float4, true>((float4*)dqkv, (float4*)dq, (float4*)dk, (float4*)dv, batch, seq, heads, headDim >> 2);
    else
        split_qkv<float, true>(dqkv, (float*)dq, (float*)dk, (float*)dv, batch, seq, heads, headDim);
}

// Iterates over merged [batch, seq, heads, d] (coalesced) and maps to [batch, heads, seq, d].
template <typename T, bool Backward>
__device__ __forceinline__ void merge_heads(T* split, T* merged, int batch, int seq, int heads, int d)
{
    i64 total = (i64)batch * seq * heads * d;
    GRID_STRIDE(i, total)
    {
        i64 t = i;
        int e = (int)(t % d); t /= d;
        int h = (int)(t % heads); t /= heads;
        int s = (int)(t % seq);
        int b = (int)(t / seq);
        i64 j = (((i64)b * heads + h) * seq + s) * d + e;
        if (Backward) split[j] = merged[i]; else merged[i] = split[j];
    }
}

extern "C" __global__ void merge_heads_f32(const float* x, float* y, int batch, int seq, int heads, int headDim)
{
    if ((headDim & 3) == 0 && aligned16(x, y))
        merge_heads<float4, false>((float4*)x, (float4*)y, batch, seq, heads, headDim >> 2);
    else
        merge_heads<float, false>((float*)x, y, batch, seq, heads, headDim);
}

extern "C" __global__ void merge_heads_backward_f32(const float* dy, float* dx, int batch, int seq, int heads, int headDim)
{
    if ((headDim & 3) == 0 && aligned16(dy, dx))
        merge_heads<float4, true>((float4*)dx, (float4*)dy, batch, seq, heads, headDim >> 2);
    else
        merge_heads<float, true>(dx, (float*)dy, batch, seq, heads, headDim);
}

// probs[row, j] = softmax_j(scale * scores[row, j] + keyMask[b, j]), row = (b * heads + h) * seqQ + i.
// One warp per row; probs may alias scores (each element is read and then written by one lane).
// Launch: block 256 (8 rows), grid ceil(rows / 8).
extern "C" __global__ void attention_softmax_forward_f32(const float* scores, const float* keyMask, float* probs,
                                                         float scale, int batch, int heads, int seqQ, int seqK)
{
    i64 rows = (i64)batch * heads * seqQ;
    i64 row = (i64)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    if (row >= rows) return;
    int lane = threadIdx.x & 31;
    int b = (int)(row / ((i64)heads * seqQ));
    const float* s = scores + row * seqK;
    const float* mask = keyMask + (i64)b * seqK;
    float* p = probs + row * seqK;

    float mx = -__int_as_float(0x7f800000);
    for (int j = lane; j < seqK; j += 32) mx = fmaxf(mx, scale * s[j] + mask[j]);
    mx = warp_max(mx);
    float sum = 0.0f;
    for (int j = lane; j < seqK; j += 32) sum += expf(scale * s[j] + mask[j] - mx);
    float inv = 1.0f / warp_sum(sum);
    for (int j = lane; j < seqK; j += 32) p[j] = expf(scale * s[j] + mask[j] - mx) * inv;
}

// dscores = scale * probs * (dprobs - sum_j dprobs * probs). One warp per row; dscores may alias dprobs.
extern "C" __global__ void attention_softmax_backward_f32(const float* probs, const float* dprobs, float* dscores,
                                                          float scale, int rows, int seqK)
{
    i64 row = (i64)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    if (row >= rows) return;
    int lane = threadIdx.x & 31;
    const float* p = probs + row * seqK;
    const float* dp = dprobs + row * seqK;
    float* ds = dscores + row * seqK;
    float dot = 0.0f;
    for (int j = lane; j < seqK; j += 32) dot += dp[j] * p[j];
    dot = warp_sum(dot);
    for (int j = lane; j < seqK; j += 32) ds[j] = scale * p[j] * (dp[j] - dot);
}
