// Embedding lookup and its gradient (Cpu/Embedding.cs).
#include "common.cuh"

#define EMBEDDING_BAD_ID 1

// output[i, :] (+)= table[ids[i], :]. An id outside [0, vocab) leaves the row alone and raises
// status (reported by the host at its next synchronisation, as the CPU would throw).
extern "C" __global__ void embedding_forward_f32(const int* ids, const float* table, float* output, int count, int dim,
                                                 int vocab, int accumulate, int* status)
{
    if ((dim & 3) == 0 && aligned16(table, output))
    {
        int dim4 = dim >> 2;
        GRID_STRIDE(i, (i64)count * dim4)
        {
            int token = (int)(i / dim4), c = (int)(i - (i64)token * dim4);
            int id = ids[token];
            if (id < 0 || id >= vocab) { raise_error(status, EMBEDDING_BAD_ID); continue; }
            float4 v = ((const float4*)table)[(i64)id * dim4 + c];
            if (accumulate)
            {
                float4 o = ((float4*)output)[i];
                v.x += o.x; v.y += o.y; v.z += o.z; v.w += o.w;
            }
            ((float4*)output)[i] = v;
        }
        return;
    }
    GRID_STRIDE(i, (i64)count * dim)
    {
        int token = (int)(i / dim), c = (int)(i - (i64)token * dim);
        int id = ids[token];
        if (id < 0 || id >= vocab) { raise_error(status, EMBEDDING_BAD_ID); continue; }
        float v = table[(i64)id * dim + c];
        output[i] = accumulate ? output[i] + v : v;
    }
}

// dtable[ids[i], :] += doutput[i, :], deterministically and with no float atomics: the warp of the
// first token carrying an id owns that table row and adds every token with the id in token order,
// which is exactly the order of a sequential loop over tokens, so the result is the same bits.
// Cost: finding the owner scans earlier ids (count^2 / 64 warp steps), and a very frequent id
// (padding, token type 0) is summed by one warp; fine for BERT's batches, a sort would scale better.
// Launch: block 256 (8 tokens), grid (ceil(count / 8), ceil(dim / 256)): grid.y splits the columns.
#define EMB_COLS_PER_LANE 8
extern "C" __global__ void embedding_backward_f32(const int* ids, const float* doutput, float* dtable, int count,
                                                  int dim, int vocab)
{
    int token = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    if (token >= count) return;
    int lane = threadIdx.x & 31;
    int id = ids[token];
    if (id < 0 || id >= vocab) return;   // the forward pass reported it

    for (int j0 = 0; j0 < token; j0 += 32)
    {
        int j = j0 + lane;
        if (__any_sync(FULL_MASK, j < token && ids[j] == id)) return;   // an earlier token owns the row
    }

    float* row = dtable + (i64)id * dim;
    for (int c0 = blockIdx.y * 32 * EMB_COLS_PER_LANE; c0 < dim; c0 += gridDim.y * 32 * EMB_COLS_PER_LANE)
    {
        float acc[EMB_COLS_PER_LANE];
#pragma unroll
        for (int k = 0; k < EMB_COLS_PER_LANE; k++)
        {
            int c = c0 + k * 32 + lane;
            acc[k] = c < dim ? row[c] : 0.0f;
        }
        for (int j0 = token; j0 < count; j0 += 32)
        {
            int j = j0 + lane;
            unsigned int hits = __ballot_sync(FULL_MASK, j < count && ids[j] == id);
            while (hits != 0)
            {
                int t = j0 + __ffs(hits) - 1;
                hits &= hits - 1;
                const float* src = doutput + (i64)t * dim;
#pragma unroll
                for (int k = 0; k < EMB_COLS_PER_LANE; k++)
                {
                    int c = c0 + k * 32 + lane;
                    if (c < dim) acc[k] += src[c];
                }
            }
        }
#pragma unroll
        for (int k = 0; k < EMB_COLS_PER_LANE; k++)
        {
            int c = c0 + k * 32 + lane;
            if (c < dim) row[c] = acc[k];
        }
    }
}
