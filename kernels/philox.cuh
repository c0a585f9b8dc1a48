// Philox4x32-10, addressed exactly as engine/Random/Philox.cs so both backends draw the same numbers:
//   key     = (seed low 32 bits, seed high 32 bits)
//   counter = (block low, block high, stream low, stream high), block = element / 4
//   element i is word i % 4 of its block.
// Uniform: top 24 bits times 2^-24 (exact in float). Normal: Box-Muller in double on the word pairs
// (0,1) and (2,3), cosine for even elements, sine for odd ones, rounded once to float.
#pragma once

struct philox_words { unsigned int w[4]; };

__device__ __forceinline__ philox_words philox4x32_10(unsigned int c0, unsigned int c1, unsigned int c2, unsigned int c3,
                                                      unsigned int k0, unsigned int k1)
{
    const unsigned int M0 = 0xD2511F53u, M1 = 0xCD9E8D57u, W0 = 0x9E3779B9u, W1 = 0xBB67AE85u;
#pragma unroll
    for (int round = 0; round < 10; round++)
    {
        if (round > 0) { k0 += W0; k1 += W1; }
        unsigned int hi0 = __umulhi(M0, c0), lo0 = M0 * c0;
        unsigned int hi1 = __umulhi(M1, c2), lo1 = M1 * c2;
        unsigned int n0 = hi1 ^ c1 ^ k0, n1 = lo1, n2 = hi0 ^ c3 ^ k1, n3 = lo0;
        c0 = n0; c1 = n1; c2 = n2; c3 = n3;
    }
    philox_words r;
    r.w[0] = c0; r.w[1] = c1; r.w[2] = c2; r.w[3] = c3;
    return r;
}

__device__ __forceinline__ philox_words philox_block(unsigned long long seed, unsigned long long stream, unsigned long long block)
{
    return philox4x32_10((unsigned int)block, (unsigned int)(block >> 32), (unsigned int)stream, (unsigned int)(stream >> 32),
                         (unsigned int)seed, (unsigned int)(seed >> 32));
}

__device__ __forceinline__ float philox_to_uniform(unsigned int bits)
{
    return (float)(bits >> 8) * (1.0f / 16777216.0f);
}

__device__ __forceinline__ float philox_uniform(unsigned long long seed, unsigned long long stream, unsigned long long index)
{
    return philox_to_uniform(philox_block(seed, stream, index >> 2).w[index & 3]);
}

// Double-precision Box-Muller like the CPU. The device's log/sin/cos are within an ulp or two of the
// host's, so after rounding to float the two agree except in rare last-bit cases.
__device__ __forceinline__ float philox_box_muller(unsigned int u, unsigned int v, bool sine)
{
    double u1 = ((double)(u >> 8) + 1.0) * (1.0 / 16777216.0);
    double u2 = (double)(v >> 8) * (1.0 / 16777216.0);
    double radius = sqrt(-2.0 * log(u1));
    double angle = 2.0 * 3.141592653589793 * u2;
    return (float)(radius * (sine ? sin(angle) : cos(angle)));
}

__device__ __forceinline__ float philox_normal(unsigned long long seed, unsigned long long stream, unsigned long long index)
{
    philox_words r = philox_block(seed, stream, index >> 2);
    bool second = (index & 2) != 0;
    return philox_box_muller(second ? r.w[2] : r.w[0], second ? r.w[3] : r.w[1], (index & 1) != 0);
}
