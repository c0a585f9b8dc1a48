using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace NativeSparsity.Engine.Backends.Cpu;

/// <summary>
/// Packing of op(A) and op(B) blocks into the layouts the micro-kernels stream through:
/// A as MR-row slivers (for each k, MR consecutive values), B as NR-column slivers (for each k,
/// NR consecutive values). Slivers past the matrix edge are padded with zeros, so the kernels
/// always run full tiles and only the final store is clipped.
/// </summary>
internal static unsafe class GemmPacking
{
    /// <summary>How many k steps ahead the transposed-A packing prefetches.</summary>
    private const int PrefetchRows = 6;

    /// <summary>
    /// Packs rows [i0, i0 + mc) and depth [p0, p0 + kc) of op(A) into dst, sliver by sliver
    /// (sliver s at dst + s * MR * kc).
    /// </summary>
    public static void PackA(int mr, float* a, long lda, bool transA, int i0, int mc, int p0, int kc, float* dst)
    {
        if (transA)
        {
            PackATransposed(mr, a + (long)p0 * lda + i0, lda, mc, kc, dst);
            return;
        }
        for (int s = 0; s * mr < mc; s++)
        {
            int r0 = i0 + s * mr;
            int rows = Math.Min(mr, mc - s * mr);
            float* d = dst + (long)s * mr * kc;
            if (rows == 6 && mr == 6)
            {
                PackRows6(a + (long)r0 * lda + p0, lda, kc, d);
                continue;
            }
            for (int r = 0; r < mr; r++)
            {
                if (r < rows)
                {
                    float* src = a + (long)(r0 + r) * lda + p0;
                    for (int p = 0; p < kc; p++) d[p * mr + r] = src[p];
                }
                else
                {
                    for (int p = 0; p < kc; p++) d[p * mr + r] = 0f;
                }
            }
        }
    }

    /// <summary>
    /// op(A)[i, p] = src[p * lda + i]: every k step is a contiguous run of rows, read row by row
    /// across all slivers (sliver by sliver would touch kc pages for 24 bytes each).
    /// </summary>
    private static void PackATransposed(int mr, float* src, long lda, int mc, int kc, float* dst)
    {
        int fullSlivers = mc / mr;
        for (int p = 0; p < kc; p++, src += lda)
        {
            // Each step reads a short run of a long row; the next rows are a page or more away,
            // where the hardware prefetchers start cold, so ask for them a few steps ahead.
            if (Sse.IsSupported && p + PrefetchRows < kc)
                for (int i = 0; i < mc; i += 16) Sse.Prefetch0(src + PrefetchRows * lda + i);
            int s = 0;
            if (mr == 6 && Vector256.IsHardwareAccelerated)
            {
                // 8-wide copies whose last two lanes spill into step p + 1 of the same sliver,
                // which is written afterwards; the last step and the last sliver copy exactly.
                int vectorSlivers = p + 1 < kc && mc >= 8 ? Math.Min(fullSlivers, (mc - 8) / 6 + 1) : 0;
                for (; s < vectorSlivers; s++)
                    Vector256.Store(Vector256.Load(src + s * 6), dst + (long)s * 6 * kc + p * 6);
            }
            else if (mr == 8 && Vector256.IsHardwareAccelerated)
            {
                for (; s < fullSlivers; s++)
                    Vector256.Store(Vector256.Load(src + s * 8), dst + (long)s * 8 * kc + p * 8);
            }
            for (; s * mr < mc; s++)
            {
                int rows = Math.Min(mr, mc - s * mr);
                float* d = dst + (long)s * mr * kc + p * mr;
                float* x = src + s * mr;
                int r = 0;
                for (; r < rows; r++) d[r] = x[r];
                for (; r < mr; r++) d[r] = 0f;
            }
        }
    }

    /// <summary>
    /// Interleaves six rows of A (the AVX2 kernel's full sliver) into k-major order: 8 x 8
    /// transposes of rows 0..5 (rows 6, 7 repeat row 5), each column stored 8 wide at a stride
    /// of 6, so its two spare lanes land where the next column is written next. The sliver's last
    /// store reaches two floats past it: into the next sliver, packed afterwards, or into the
    /// slack that <see cref="GemmBuffer"/> keeps at the end.
    /// </summary>
    private static void PackRows6(float* src, long lda, int kc, float* d)
    {
        float* r0 = src, r1 = src + lda, r2 = src + 2 * lda, r3 = src + 3 * lda, r4 = src + 4 * lda, r5 = src + 5 * lda;
        int p = 0;
        if (Avx.IsSupported)
        {
            for (; p + 8 <= kc; p += 8)
            {
                if ((p & 15) == 0)
                {
                    // The six row segments are short (kc floats) and a row stride apart, too short
                    // for the hardware prefetchers to ramp up: request 4 lines ahead, running on
                    // into the next sliver's rows near the end.
                    long ahead = p + 64 < kc ? p + 64 : 6 * lda + (p + 64 - kc);
                    Sse.Prefetch0(r0 + ahead); Sse.Prefetch0(r1 + ahead); Sse.Prefetch0(r2 + ahead);
                    Sse.Prefetch0(r3 + ahead); Sse.Prefetch0(r4 + ahead); Sse.Prefetch0(r5 + ahead);
                }
                var v0 = Avx.LoadVector256(r0 + p); var v1 = Avx.LoadVector256(r1 + p);
                var v2 = Avx.LoadVector256(r2 + p); var v3 = Avx.LoadVector256(r3 + p);
                var v4 = Avx.LoadVector256(r4 + p); var v5 = Avx.LoadVector256(r5 + p);
                var v6 = v5; var v7 = v5;
                Transpose8x8(ref v0, ref v1, ref v2, ref v3, ref v4, ref v5, ref v6, ref v7);
                float* o = d + p * 6;
                Avx.Store(o, v0); Avx.Store(o + 6, v1); Avx.Store(o + 12, v2); Avx.Store(o + 18, v3);
                Avx.Store(o + 24, v4); Avx.Store(o + 30, v5); Avx.Store(o + 36, v6); Avx.Store(o + 42, v7);
            }
        }
        for (d += p * 6; p < kc; p++, d += 6)
        {
            d[0] = r0[p]; d[1] = r1[p]; d[2] = r2[p]; d[3] = r3[p]; d[4] = r4[p]; d[5] = r5[p];
        }
    }

    /// <summary>
    /// Packs slivers [s0, s1) of the panel op(B)[p0 .. p0 + kc, j0 .. j0 + nc) into dst
    /// (sliver s at dst + s * NR * kc).
    /// </summary>
    public static void PackB(int nr, float* b, long ldb, bool transB, int p0, int kc, int j0, int nc, int s0, int s1, float* dst)
    {
        if (!transB)
        {
            PackBRows(nr, b + (long)p0 * ldb + j0, ldb, kc, nc, s0, s1, dst);
            return;
        }
        for (int s = s0; s < s1; s++)
        {
            int c0 = j0 + s * nr;
            int cols = Math.Min(nr, nc - s * nr);
            float* d = dst + (long)s * nr * kc;
            // op(B)[p, j] = b[j * ldb + p]: rows of the stored B become columns of the sliver.
            if (cols == nr && nr % 8 == 0 && Avx.IsSupported)
            {
                PackTransposed8(b + (long)c0 * ldb + p0, ldb, kc, nr, d);
                continue;
            }
            for (int j = 0; j < nr; j++)
            {
                if (j < cols)
                {
                    float* src = b + (long)(c0 + j) * ldb + p0;
                    for (int p = 0; p < kc; p++) d[p * nr + j] = src[p];
                }
                else
                {
                    for (int p = 0; p < kc; p++) d[p * nr + j] = 0f;
                }
            }
        }
    }

    /// <summary>
    /// op(B)[p, j] = src[p * ldb + j]: each k step is a contiguous run of columns, read row by row
    /// across the slivers so memory is streamed in order (sliver by sliver would hop a row each
    /// cache line, which the prefetchers follow poorly when B is larger than the caches).
    /// </summary>
    private static void PackBRows(int nr, float* src, long ldb, int kc, int nc, int s0, int s1, float* dst)
    {
        int fullEnd = Math.Min(s1, nc / nr);
        bool vector = nr % Vector256<float>.Count == 0 && Vector256.IsHardwareAccelerated;
        for (int p = 0; p < kc; p++, src += ldb)
        {
            int s = s0;
            if (vector)
            {
                for (; s < fullEnd; s++)
                {
                    float* x = src + s * nr;
                    float* d = dst + (long)s * nr * kc + (long)p * nr;
                    for (int j = 0; j < nr; j += Vector256<float>.Count)
                        Vector256.Store(Vector256.Load(x + j), d + j);
                }
            }
            for (; s < s1; s++)
            {
                int cols = Math.Min(nr, nc - s * nr);
                float* x = src + s * nr;
                float* d = dst + (long)s * nr * kc + (long)p * nr;
                int j = 0;
                for (; j < cols; j++) d[j] = x[j];
                for (; j < nr; j++) d[j] = 0f;
            }
        }
    }

    /// <summary>
    /// d[p * nr + j] = src[j * ld + p] for j in [0, nr), p in [0, kc), in 8 x 8 register transposes
    /// (the scalar column-by-column form writes with an NR stride and is several times slower).
    /// </summary>
    private static void PackTransposed8(float* src, long ld, int kc, int nr, float* d)
    {
        for (int jb = 0; jb < nr; jb += 8)
        {
            float* s = src + jb * ld;
            int p = 0;
            for (; p + 8 <= kc; p += 8)
            {
                var r0 = Vector256.Load(s + p); var r1 = Vector256.Load(s + ld + p);
                var r2 = Vector256.Load(s + 2 * ld + p); var r3 = Vector256.Load(s + 3 * ld + p);
                var r4 = Vector256.Load(s + 4 * ld + p); var r5 = Vector256.Load(s + 5 * ld + p);
                var r6 = Vector256.Load(s + 6 * ld + p); var r7 = Vector256.Load(s + 7 * ld + p);
                Transpose8x8(ref r0, ref r1, ref r2, ref r3, ref r4, ref r5, ref r6, ref r7);
                float* o = d + (long)p * nr + jb;
                r0.Store(o); r1.Store(o + nr); r2.Store(o + 2 * nr); r3.Store(o + 3 * nr);
                r4.Store(o + 4 * nr); r5.Store(o + 5 * nr); r6.Store(o + 6 * nr); r7.Store(o + 7 * nr);
            }
            for (; p < kc; p++)
                for (int j = 0; j < 8; j++) d[(long)p * nr + jb + j] = s[j * ld + p];
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Transpose8x8(ref Vector256<float> r0, ref Vector256<float> r1, ref Vector256<float> r2, ref Vector256<float> r3,
                                     ref Vector256<float> r4, ref Vector256<float> r5, ref Vector256<float> r6, ref Vector256<float> r7)
    {
        // Interleave pairs, then quads, then swap 128-bit halves: the classic 24-shuffle transpose.
        var t0 = Avx.UnpackLow(r0, r1); var t1 = Avx.UnpackHigh(r0, r1);
        var t2 = Avx.UnpackLow(r2, r3); var t3 = Avx.UnpackHigh(r2, r3);
        var t4 = Avx.UnpackLow(r4, r5); var t5 = Avx.UnpackHigh(r4, r5);
        var t6 = Avx.UnpackLow(r6, r7); var t7 = Avx.UnpackHigh(r6, r7);
        var u0 = Avx.Shuffle(t0, t2, 0x44); var u1 = Avx.Shuffle(t0, t2, 0xEE);
        var u2 = Avx.Shuffle(t1, t3, 0x44); var u3 = Avx.Shuffle(t1, t3, 0xEE);
        var u4 = Avx.Shuffle(t4, t6, 0x44); var u5 = Avx.Shuffle(t4, t6, 0xEE);
        var u6 = Avx.Shuffle(t5, t7, 0x44); var u7 = Avx.Shuffle(t5, t7, 0xEE);
        r0 = Avx.Permute2x128(u0, u4, 0x20); r1 = Avx.Permute2x128(u1, u5, 0x20);
        r2 = Avx.Permute2x128(u2, u6, 0x20); r3 = Avx.Permute2x128(u3, u7, 0x20);
        r4 = Avx.Permute2x128(u0, u4, 0x31); r5 = Avx.Permute2x128(u1, u5, 0x31);
        r6 = Avx.Permute2x128(u2, u6, 0x31); r7 = Avx.Permute2x128(u3, u7, 0x31);
    }
}

/// <summary>
/// Per-thread packing buffers, 64-byte aligned, grown on demand and kept for the thread's
/// lifetime (freed by the finalizer when the thread ends): packing a panel must not allocate.
/// </summary>
internal sealed unsafe class GemmBuffer
{
    [ThreadStatic] private static GemmBuffer? t_a;
    [ThreadStatic] private static GemmBuffer? t_b;
    [ThreadStatic] private static GemmBuffer? t_out;

    /// <summary>Floats past the requested size that packing may scribble on (see PackRows6).</summary>
    private const int Slack = 16;

    private float* _ptr;
    private long _capacity;

    /// <summary>This thread's buffer for packed A blocks.</summary>
    public static float* ForA(long floats) => (t_a ??= new GemmBuffer()).Ensure(floats + Slack);

    /// <summary>This thread's buffer for the packed B panel (shared with its helpers during one call).</summary>
    public static float* ForB(long floats) => (t_b ??= new GemmBuffer()).Ensure(floats);

    /// <summary>This thread's buffer for a transposed output tile (the sparse GEMM's Y^T).</summary>
    public static float* ForOutput(long floats) => (t_out ??= new GemmBuffer()).Ensure(floats);

    private float* Ensure(long floats)
    {
        if (floats > _capacity)
        {
            if (_ptr != null) NativeMemory.AlignedFree(_ptr);
            _ptr = null;
            _capacity = 0;
            _ptr = (float*)NativeMemory.AlignedAlloc((nuint)(Math.Max(floats, 16) * sizeof(float)), 64);
            _capacity = floats;
        }
        return _ptr;
    }

    ~GemmBuffer()
    {
        if (_ptr != null) NativeMemory.AlignedFree(_ptr);
    }
}
