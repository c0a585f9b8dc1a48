// Fused, masked AdamW (Optim/AdamW.cs on the CPU): optional global-norm clipping, decoupled weight
// decay, bias correction. Where the mask is 0, param, grad, m and v become exactly +0.
// biasCorrection1 = 1 - beta1^step and biasCorrection2 = 1 - beta2^step come from the host (double).
#include "common.cuh"

extern "C" __global__ void adamw_f32(float* param, float* grad, float* m, float* v, const unsigned char* mask,
                                     const float* gradNormSquared, float lr, float beta1, float beta2, float eps,
                                     float weightDecay, float biasCorrection1, float biasCorrection2,
                                     float maxGradNorm, i64 n)
{
    float clip = 1.0f;
    if (gradNormSquared != 0 && maxGradNorm > 0.0f)
    {
        float norm = sqrtf(gradNormSquared[0]);
        if (norm > maxGradNorm) clip = maxGradNorm / norm;
    }
    float decay = 1.0f - lr * weightDecay;
    GRID_STRIDE(i, n)
    {
        if (mask != 0 && mask[i] == 0)
        {
            param[i] = 0.0f; grad[i] = 0.0f; m[i] = 0.0f; v[i] = 0.0f;
            continue;
        }
        float g = grad[i] * clip;
        float mi = beta1 * m[i] + (1.0f - beta1) * g;
        float vi = beta2 * v[i] + (1.0f - beta2) * g * g;
        m[i] = mi;
        v[i] = vi;
        float mhat = mi / biasCorrection1;
        float vhat = vi / biasCorrection2;
        param[i] = param[i] * decay - lr * mhat / (sqrtf(vhat) + eps);
    }
}
