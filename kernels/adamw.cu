// Fused, masked AdamW (Optim/AdamW.cs on the CPU): optional global-norm clipping, decoupled weight
// decay, bias correction. Where the mask is 0, param, grad, m and v become exactly +0.
// biasCorrection1 = 1 - beta1^step and biasCorrection2 = 1 - beta2^step come from the host (double).
// float4 (and four mask bytes as one word) when the pointers allow, scalar tail.
#include "common.cuh"

struct adamw_args
{
    float lr, beta1, beta2, eps, decay, biasCorrection1, biasCorrection2, clip;
};

__device__ __forceinline__ void adamw_one(float& p, float& g, float& m, float& v, bool keep, const adamw_args& a)
{
    if (!keep) { p = 0.0f; g = 0.0f; m = 0.0f; v = 0.0f; return; }
    float gc = g * a.clip;
    m = a.beta1 * m + (1.0f - a.beta1) * gc;
    v = a.beta2 * v + (1.0f - a.beta2) * gc * gc;
    float mhat = m / a.biasCorrection1;
    float vhat = v / a.biasCorrection2;
    p = p * a.decay - a.lr * mhat / (sqrtf(vhat) + a.eps);
}

extern "C" __global__ void adamw_f32(float* param, float* grad, float* m, float* v, const unsigned char* mask,
                                     const float* gradNormSquared, float lr, float beta1, float beta2, float eps,
                                     float weightDecay, float biasCorrection1, float biasCorrection2,
                                     float maxGradNorm, i64 n)
{
    adamw_args a;
    a.lr = lr; a.beta1 = beta1; a.beta2 = beta2; a.eps = eps; a.decay = 1.0f - lr * weightDecay;
    a.biasCorrection1 = biasCorrection1; a.biasCorrection2 = biasCorrection2; a.clip = 1.0f;
    if (gradNormSquared != 0 && maxGradNorm > 0.0f)
    {
        float norm = sqrtf(gradNormSquared[0]);
        if (norm > maxGradNorm) a.clip = maxGradNorm / norm;
    }

    i64 n4 = 0;
    if (aligned16(param, grad, m, v) && (((u64)mask) & 3) == 0)
    {
        n4 = n >> 2;
        GRID_STRIDE(i, n4)
        {
            float4 p = ((float4*)param)[i], g = ((float4*)grad)[i], mm = ((float4*)m)[i], vv = ((float4*)v)[i];
            unsigned int keep = mask != 0 ? ((const unsigned int*)mask)[i] : 0x01010101u;
            adamw_one(p.x, g.x, mm.x, vv.x, (keep & 0xffu) != 0, a);
            adamw_one(p.y, g.y, mm.y, vv.y, (keep & 0xff00u) != 0, a);
            adamw_one(p.z, g.z, mm.z, vv.z, (keep & 0xff0000u) != 0, a);
            adamw_one(p.w, g.w, mm.w, vv.w, (keep & 0xff000000u) != 0, a);
            ((float4*)param)[i] = p; ((float4*)m)[i] = mm; ((float4*)v)[i] = vv;
            if ((keep & 0xffu) == 0 || (keep & 0xff00u) == 0 || (keep & 0xff0000u) == 0 || (keep & 0xff000000u) == 0)
                ((float4*)grad)[i] = g;   // only masked lanes changed the gradient
        }
    }
    GRID_STRIDE(j, n - 4 * n4)
    {
        i64 i = 4 * n4 + j;
        float p = param[i], g = grad[i], mm = m[i], vv = v[i];
        bool keep = mask == 0 || mask[i] != 0;
        adamw_one(p, g, mm, vv, keep, a);
        param[i] = p; m[i] = mm; v[i] = vv;
        if (!keep) grad[i] = 0.0f;
    }
}
