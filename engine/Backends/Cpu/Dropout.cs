using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using NativeSparsity.Engine.Random;
using NativeSparsity.Engine.Tensors;

namespace NativeSparsity.Engine.Backends.Cpu;

public sealed unsafe partial class CpuBackend
{
    /// <summary>Elements per parallel chunk; any size gives the same result, the mask is per element.</summary>
    private const int DropoutChunk = 1 << 16;

    /// <summary>
    /// Forces the scalar Philox path even where AVX2 is present, so tests can check that both paths
    /// give the same mask. Not for production use.
    /// </summary>
    internal static bool DropoutForceScalar { get; set; }

    public void DropoutForward(Tensor x, Tensor y, float p, ulong seed, ulong stream, ulong counter) =>
        Dropout(x, y, p, seed, stream, counter, nameof(x), nameof(y));

    public void DropoutBackward(Tensor dy, Tensor dx, float p, ulong seed, ulong stream, ulong counter) =>
        Dropout(dy, dx, p, seed, stream, counter, nameof(dy), nameof(dx));

    /// <summary>
    /// dst[i] = src[i] / (1 - p) where Philox.Uniform(seed, stream, counter + i) &gt;= p, else 0.
    /// The backward pass is the same function of dy, which is what makes the masks agree.
    /// </summary>
    private static void Dropout(Tensor src, Tensor dst, float p, ulong seed, ulong stream, ulong counter,
                                string srcName, string dstName)
    {
        if (!(p >= 0f && p < 1f))
            throw new ArgumentOutOfRangeException(nameof(p), p, "dropout probability p must lie in [0, 1)");
        if (src.Length != dst.Length)
            throw new ArgumentException($"dropout: {srcName} {src} and {dstName} {dst} must hold the same number of elements");
        float* s = src.F32(), d = dst.F32();
        long length = src.Length;
        if (p == 0f)
        {
            if (s != d)
                CpuParallel.ForRange(length, DropoutChunk, (start, end) =>
                    new ReadOnlySpan<float>(s + start, (int)(end - start)).CopyTo(new Span<float>(d + start, (int)(end - start))));
            return;
        }
        // Division by the float 1 - p, exactly as written in the contract, so a CUDA kernel doing
        // x / (1.0f - p) matches bit for bit.
        float keep = 1f - p;
        bool vector = Avx2.IsSupported && !DropoutForceScalar;
        CpuParallel.ForRange(length, DropoutChunk, (start, end) =>
        {
            long i = start;
            // Scalar up to the first element that starts a Philox block, so vector groups are block-aligned.
            for (; i < end && ((counter + (ulong)i) & 3) != 0; i++)
                d[i] = Philox.Uniform(seed, stream, counter + (ulong)i) >= p ? s[i] / keep : 0f;
            if (vector)
            {
                // The lane arithmetic adds block offsets without wrapping, so stop short of 2^64.
                for (; i + 32 <= end && counter + (ulong)i <= ulong.MaxValue - 32; i += 32)
                    Dropout32Avx2(s + i, d + i, (counter + (ulong)i) >> 2, seed, stream, p, keep);
            }
            // Whole blocks without AVX2 (or the vector loop's remainder): one Philox block per 4 elements.
            for (; i + 4 <= end; i += 4)
            {
                var (w0, w1, w2, w3) = Philox.Words(seed, stream, (counter + (ulong)i) >> 2);
                d[i] = Philox.ToUniform(w0) >= p ? s[i] / keep : 0f;
                d[i + 1] = Philox.ToUniform(w1) >= p ? s[i + 1] / keep : 0f;
                d[i + 2] = Philox.ToUniform(w2) >= p ? s[i + 2] / keep : 0f;
                d[i + 3] = Philox.ToUniform(w3) >= p ? s[i + 3] / keep : 0f;
            }
            for (; i < end; i++)
                d[i] = Philox.Uniform(seed, stream, counter + (ulong)i) >= p ? s[i] / keep : 0f;
        });
    }

    // Philox4x32-10 constants, the same as Random/Philox.cs (the tests compare element by element).
    private const uint PhiloxM0 = 0xD2511F53, PhiloxM1 = 0xCD9E8D57;
    private const uint PhiloxW0 = 0x9E3779B9, PhiloxW1 = 0xBB67AE85;

    /// <summary>
    /// Dropout of 32 elements = 8 Philox blocks starting at <paramref name="block"/>, computed as two
    /// independent groups of 4 blocks (one block per 64-bit lane) so their multiply latencies overlap.
    /// Each lane keeps its 32-bit word in the low half; vpmuludq reads only low halves, so whatever
    /// the high halves collect is never used.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Dropout32Avx2(float* x, float* y, ulong block, ulong seed, ulong stream, float p, float keep)
    {
        var lane = Vector256.Create(0UL, 1UL, 2UL, 3UL);
        Vector256<ulong> blocksA = Vector256.Create(block) + lane;
        Vector256<ulong> blocksB = blocksA + Vector256.Create(4UL);
        Vector256<ulong> a0 = blocksA, a1 = Vector256.ShiftRightLogical(blocksA, 32);
        Vector256<ulong> b0 = blocksB, b1 = Vector256.ShiftRightLogical(blocksB, 32);
        Vector256<ulong> a2 = Vector256.Create((ulong)(uint)stream), a3 = Vector256.Create(stream >> 32);
        Vector256<ulong> b2 = a2, b3 = a3;
        Vector256<uint> m0 = Vector256.Create((ulong)PhiloxM0).AsUInt32();
        Vector256<uint> m1 = Vector256.Create((ulong)PhiloxM1).AsUInt32();
        uint k0 = (uint)seed, k1 = (uint)(seed >> 32);
        for (int round = 0; round < 10; round++)
        {
            Vector256<ulong> key0 = Vector256.Create((ulong)k0), key1 = Vector256.Create((ulong)k1);
            Vector256<ulong> pa0 = Avx2.Multiply(a0.AsUInt32(), m0), pa1 = Avx2.Multiply(a2.AsUInt32(), m1);
            Vector256<ulong> pb0 = Avx2.Multiply(b0.AsUInt32(), m0), pb1 = Avx2.Multiply(b2.AsUInt32(), m1);
            a0 = Vector256.ShiftRightLogical(pa1, 32) ^ a1 ^ key0;
            a2 = Vector256.ShiftRightLogical(pa0, 32) ^ a3 ^ key1;
            a1 = pa1; a3 = pa0;
            b0 = Vector256.ShiftRightLogical(pb1, 32) ^ b1 ^ key0;
            b2 = Vector256.ShiftRightLogical(pb0, 32) ^ b3 ^ key1;
            b1 = pb1; b3 = pb0;
            k0 += PhiloxW0; k1 += PhiloxW1;
        }
        var (wa0, wa1) = InterleaveWords(a0, a1, a2, a3);
        var (wb0, wb1) = InterleaveWords(b0, b1, b2, b3);
        var pv = Vector256.Create(p);
        var keepv = Vector256.Create(keep);
        ApplyMask8(wa0, x, y, pv, keepv);
        ApplyMask8(wa1, x + 8, y + 8, pv, keepv);
        ApplyMask8(wb0, x + 16, y + 16, pv, keepv);
        ApplyMask8(wb1, x + 24, y + 24, pv, keepv);
    }

    /// <summary>Four blocks' words, one block per lane, into element order: blocks 0-1 and blocks 2-3.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (Vector256<uint>, Vector256<uint>) InterleaveWords(
        Vector256<ulong> c0, Vector256<ulong> c1, Vector256<ulong> c2, Vector256<ulong> c3)
    {
        var low = Vector256.Create(0xFFFF_FFFFUL);
        Vector256<ulong> w01 = (c0 & low) | Vector256.ShiftLeft(c1, 32);
        Vector256<ulong> w23 = (c2 & low) | Vector256.ShiftLeft(c3, 32);
        Vector256<ulong> lo = Avx2.UnpackLow(w01, w23);   // blocks 0 and 2
        Vector256<ulong> hi = Avx2.UnpackHigh(w01, w23);  // blocks 1 and 3
        return (Avx2.Permute2x128(lo, hi, 0x20).AsUInt32(), Avx2.Permute2x128(lo, hi, 0x31).AsUInt32());
    }

    /// <summary>Philox.ToUniform on 8 words (exact: a 24-bit integer times 2^-24), then keep or zero.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void ApplyMask8(Vector256<uint> words, float* x, float* y, Vector256<float> p, Vector256<float> keep)
    {
        Vector256<float> u = Vector256.ConvertToSingle(Vector256.ShiftRightLogical(words, 8).AsInt32())
                             * Vector256.Create(1.0f / 16777216.0f);
        Vector256<float> kept = Vector256.Load(x) / keep;
        (Vector256.GreaterThanOrEqual(u, p) & kept).Store(y);
    }
}
