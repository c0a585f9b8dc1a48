using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace NativeSparsity.Engine.Backends.Cpu;

/// <summary>The register-blocked micro-kernels the packed GEMM can run; Auto picks the best the CPU has.</summary>
internal enum GemmKernelKind { Auto = 0, Avx512, Avx2, Portable }

/// <summary>
/// One micro-kernel with its register tile (MR x NR) and the cache blocking that suits it.
/// Every kernel computes each C element as one FMA chain over k in increasing order, starting from
/// zero within a KC block, then applies c = fma(alpha, acc, beta * c) (or alpha * acc when
/// beta == 0) once per KC block. Full tiles and edge tiles do exactly that arithmetic, so an
/// element's value does not depend on which tile or thread computed it: the result is bitwise the
/// same for any thread count or M/N partitioning (only the K blocking, fixed by k, matters).
/// </summary>
internal sealed unsafe class GemmMicroKernel
{
    /// <summary>
    /// Tile(kc, packedA, packedB, c, ldc, mr, nr, alpha, beta): C[mr, nr] (row stride ldc) from an
    /// MR-row sliver of packed A and an NR-column sliver of packed B, both kc long. beta == 0
    /// never reads C.
    /// </summary>
    public readonly delegate*<int, float*, float*, float*, long, int, int, float, float, void> Tile;

    private GemmMicroKernel(GemmKernelKind kind, int mr, int nr, int mc, int kc, int nc,
                            delegate*<int, float*, float*, float*, long, int, int, float, float, void> tile)
    {
        Kind = kind; MR = mr; NR = nr; MC = mc; KC = kc; NC = nc; Tile = tile;
    }

    public GemmKernelKind Kind { get; }
    public int MR { get; }
    public int NR { get; }
    /// <summary>Rows of packed A per block (a multiple of MR; the block lives in L2).</summary>
    public int MC { get; }
    /// <summary>Depth of one packed block (one B sliver of KC x NR stays in L1).</summary>
    public int KC { get; }
    /// <summary>Columns of packed B per panel (a multiple of NR; the panel lives in L3).</summary>
    public int NC { get; }

    // Blocking for AVX2: tuned on AMD Zen 3 (32 KiB L1d, 512 KiB L2 a core); see docs/PERFORMANCE.md.
    private static readonly GemmMicroKernel s_avx2 = new(GemmKernelKind.Avx2, 6, 16, 144, 256, 4080, &Avx2Tile6x16);
    // Blocking for AVX-512 is sized for 48 KiB L1d / 2 MiB L2 cores and has not been measured here.
    private static readonly GemmMicroKernel s_avx512 = new(GemmKernelKind.Avx512, 8, 32, 192, 256, 4096, &Avx512Tile8x32);
    private static readonly GemmMicroKernel s_portable = new(GemmKernelKind.Portable, 4, 2 * Vector<float>.Count, 128, 256, 4096, &PortableTile);

    /// <summary>The fastest kernel this CPU runs natively.</summary>
    public static GemmKernelKind Best =>
        Avx512F.IsSupported ? GemmKernelKind.Avx512
        : Avx2.IsSupported && Fma.IsSupported ? GemmKernelKind.Avx2
        : GemmKernelKind.Portable;

    /// <summary>
    /// Whether the kernel can run here. The AVX-512 kernel is written with Vector512, which .NET
    /// emulates in software where the hardware lacks it (correct, slow), so it always runs; the
    /// AVX2 kernel uses FMA intrinsics directly and needs the hardware.
    /// </summary>
    public static bool CanRun(GemmKernelKind kind, out string reason)
    {
        reason = "";
        if (kind == GemmKernelKind.Avx2 && !(Avx2.IsSupported && Fma.IsSupported))
        {
            reason = "the AVX2 kernel needs AVX2 and FMA, which this CPU (or DOTNET_Enable* settings) does not offer";
            return false;
        }
        return true;
    }

    public static GemmMicroKernel Get(GemmKernelKind kind)
    {
        if (kind == GemmKernelKind.Auto) kind = Best;
        if (!CanRun(kind, out string reason)) throw new PlatformNotSupportedException(reason);
        return kind switch
        {
            GemmKernelKind.Avx512 => s_avx512,
            GemmKernelKind.Avx2 => s_avx2,
            _ => s_portable,
        };
    }

    /// <summary>Edge tiles: write the accumulators (acc, row stride accStride) into the valid mr x nr corner of C.</summary>
    private static void StoreEdge(float* acc, int accStride, float* c, long ldc, int mr, int nr, float alpha, float beta)
    {
        for (int i = 0; i < mr; i++)
        {
            float* ci = c + i * ldc;
            float* ai = acc + i * accStride;
            if (beta == 0f)
                for (int j = 0; j < nr; j++) ci[j] = alpha * ai[j];
            else
                for (int j = 0; j < nr; j++) ci[j] = MathF.FusedMultiplyAdd(alpha, ai[j], beta * ci[j]);
        }
    }

    /// <summary>
    /// Asks for the C tile's cache lines before the k loop: C is usually far from the core (it is
    /// swept once per KC block), and a miss met only at the final update stalls the next tile.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void PrefetchTile(float* c, long ldc, int mr, int nr)
    {
        if (!Sse.IsSupported) return;
        for (int i = 0; i < mr; i++, c += ldc)
        {
            Sse.Prefetch0(c);
            Sse.Prefetch0(c + nr - 1);
        }
    }

    // ---- AVX2 + FMA: 6 x 16, twelve ymm accumulators, two B vectors and one broadcast ----------

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Update256(float* c, Vector256<float> acc, Vector256<float> alpha, Vector256<float> beta, bool overwrite) =>
        Avx.Store(c, overwrite ? Avx.Multiply(alpha, acc) : Fma.MultiplyAdd(alpha, acc, Avx.Multiply(beta, Avx.LoadVector256(c))));

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Avx2Tile6x16(int kc, float* a, float* b, float* c, long ldc, int mr, int nr, float alpha, float beta)
    {
        PrefetchTile(c, ldc, mr, 16);
        Vector256<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
        Vector256<float> c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        int p = 0;
        // Two k steps per iteration halve the loop overhead against 24 FMAs.
        for (; p + 1 < kc; p += 2)
        {
            Vector256<float> b0 = Avx.LoadVector256(b), b1 = Avx.LoadVector256(b + 8), av;
            av = Vector256.Create(a[0]); c00 = Fma.MultiplyAdd(av, b0, c00); c01 = Fma.MultiplyAdd(av, b1, c01);
            av = Vector256.Create(a[1]); c10 = Fma.MultiplyAdd(av, b0, c10); c11 = Fma.MultiplyAdd(av, b1, c11);
            av = Vector256.Create(a[2]); c20 = Fma.MultiplyAdd(av, b0, c20); c21 = Fma.MultiplyAdd(av, b1, c21);
            av = Vector256.Create(a[3]); c30 = Fma.MultiplyAdd(av, b0, c30); c31 = Fma.MultiplyAdd(av, b1, c31);
            av = Vector256.Create(a[4]); c40 = Fma.MultiplyAdd(av, b0, c40); c41 = Fma.MultiplyAdd(av, b1, c41);
            av = Vector256.Create(a[5]); c50 = Fma.MultiplyAdd(av, b0, c50); c51 = Fma.MultiplyAdd(av, b1, c51);
            b0 = Avx.LoadVector256(b + 16); b1 = Avx.LoadVector256(b + 24);
            av = Vector256.Create(a[6]); c00 = Fma.MultiplyAdd(av, b0, c00); c01 = Fma.MultiplyAdd(av, b1, c01);
            av = Vector256.Create(a[7]); c10 = Fma.MultiplyAdd(av, b0, c10); c11 = Fma.MultiplyAdd(av, b1, c11);
            av = Vector256.Create(a[8]); c20 = Fma.MultiplyAdd(av, b0, c20); c21 = Fma.MultiplyAdd(av, b1, c21);
            av = Vector256.Create(a[9]); c30 = Fma.MultiplyAdd(av, b0, c30); c31 = Fma.MultiplyAdd(av, b1, c31);
            av = Vector256.Create(a[10]); c40 = Fma.MultiplyAdd(av, b0, c40); c41 = Fma.MultiplyAdd(av, b1, c41);
            av = Vector256.Create(a[11]); c50 = Fma.MultiplyAdd(av, b0, c50); c51 = Fma.MultiplyAdd(av, b1, c51);
            a += 12; b += 32;
        }
        if (p < kc)
        {
            Vector256<float> b0 = Avx.LoadVector256(b), b1 = Avx.LoadVector256(b + 8), av;
            av = Vector256.Create(a[0]); c00 = Fma.MultiplyAdd(av, b0, c00); c01 = Fma.MultiplyAdd(av, b1, c01);
            av = Vector256.Create(a[1]); c10 = Fma.MultiplyAdd(av, b0, c10); c11 = Fma.MultiplyAdd(av, b1, c11);
            av = Vector256.Create(a[2]); c20 = Fma.MultiplyAdd(av, b0, c20); c21 = Fma.MultiplyAdd(av, b1, c21);
            av = Vector256.Create(a[3]); c30 = Fma.MultiplyAdd(av, b0, c30); c31 = Fma.MultiplyAdd(av, b1, c31);
            av = Vector256.Create(a[4]); c40 = Fma.MultiplyAdd(av, b0, c40); c41 = Fma.MultiplyAdd(av, b1, c41);
            av = Vector256.Create(a[5]); c50 = Fma.MultiplyAdd(av, b0, c50); c51 = Fma.MultiplyAdd(av, b1, c51);
        }

        if (mr == 6 && nr == 16)
        {
            var va = Vector256.Create(alpha);
            var vb = Vector256.Create(beta);
            bool overwrite = beta == 0f;
            Update256(c, c00, va, vb, overwrite); Update256(c + 8, c01, va, vb, overwrite); c += ldc;
            Update256(c, c10, va, vb, overwrite); Update256(c + 8, c11, va, vb, overwrite); c += ldc;
            Update256(c, c20, va, vb, overwrite); Update256(c + 8, c21, va, vb, overwrite); c += ldc;
            Update256(c, c30, va, vb, overwrite); Update256(c + 8, c31, va, vb, overwrite); c += ldc;
            Update256(c, c40, va, vb, overwrite); Update256(c + 8, c41, va, vb, overwrite); c += ldc;
            Update256(c, c50, va, vb, overwrite); Update256(c + 8, c51, va, vb, overwrite);
            return;
        }
        float* t = stackalloc float[6 * 16];
        Avx.Store(t, c00); Avx.Store(t + 8, c01); Avx.Store(t + 16, c10); Avx.Store(t + 24, c11);
        Avx.Store(t + 32, c20); Avx.Store(t + 40, c21); Avx.Store(t + 48, c30); Avx.Store(t + 56, c31);
        Avx.Store(t + 64, c40); Avx.Store(t + 72, c41); Avx.Store(t + 80, c50); Avx.Store(t + 88, c51);
        StoreEdge(t, 16, c, ldc, mr, nr, alpha, beta);
    }

    // ---- AVX-512: 8 x 32, sixteen zmm accumulators (32 registers leave ample room) ---------------

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Update512(float* c, Vector512<float> acc, Vector512<float> alpha, Vector512<float> beta, bool overwrite) =>
        (overwrite ? alpha * acc : Vector512.FusedMultiplyAdd(alpha, acc, beta * Vector512.Load(c))).Store(c);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Avx512Tile8x32(int kc, float* a, float* b, float* c, long ldc, int mr, int nr, float alpha, float beta)
    {
        Vector512<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default, c30 = default, c31 = default;
        Vector512<float> c40 = default, c41 = default, c50 = default, c51 = default, c60 = default, c61 = default, c70 = default, c71 = default;
        PrefetchTile(c, ldc, mr, 32);
        PrefetchTile(c + 16, ldc, mr, 16);
        for (int p = 0; p < kc; p++)
        {
            Vector512<float> b0 = Vector512.Load(b), b1 = Vector512.Load(b + 16), av;
            av = Vector512.Create(a[0]); c00 = Vector512.FusedMultiplyAdd(av, b0, c00); c01 = Vector512.FusedMultiplyAdd(av, b1, c01);
            av = Vector512.Create(a[1]); c10 = Vector512.FusedMultiplyAdd(av, b0, c10); c11 = Vector512.FusedMultiplyAdd(av, b1, c11);
            av = Vector512.Create(a[2]); c20 = Vector512.FusedMultiplyAdd(av, b0, c20); c21 = Vector512.FusedMultiplyAdd(av, b1, c21);
            av = Vector512.Create(a[3]); c30 = Vector512.FusedMultiplyAdd(av, b0, c30); c31 = Vector512.FusedMultiplyAdd(av, b1, c31);
            av = Vector512.Create(a[4]); c40 = Vector512.FusedMultiplyAdd(av, b0, c40); c41 = Vector512.FusedMultiplyAdd(av, b1, c41);
            av = Vector512.Create(a[5]); c50 = Vector512.FusedMultiplyAdd(av, b0, c50); c51 = Vector512.FusedMultiplyAdd(av, b1, c51);
            av = Vector512.Create(a[6]); c60 = Vector512.FusedMultiplyAdd(av, b0, c60); c61 = Vector512.FusedMultiplyAdd(av, b1, c61);
            av = Vector512.Create(a[7]); c70 = Vector512.FusedMultiplyAdd(av, b0, c70); c71 = Vector512.FusedMultiplyAdd(av, b1, c71);
            a += 8; b += 32;
        }

        if (mr == 8 && nr == 32)
        {
            var va = Vector512.Create(alpha);
            var vb = Vector512.Create(beta);
            bool overwrite = beta == 0f;
            Update512(c, c00, va, vb, overwrite); Update512(c + 16, c01, va, vb, overwrite); c += ldc;
            Update512(c, c10, va, vb, overwrite); Update512(c + 16, c11, va, vb, overwrite); c += ldc;
            Update512(c, c20, va, vb, overwrite); Update512(c + 16, c21, va, vb, overwrite); c += ldc;
            Update512(c, c30, va, vb, overwrite); Update512(c + 16, c31, va, vb, overwrite); c += ldc;
            Update512(c, c40, va, vb, overwrite); Update512(c + 16, c41, va, vb, overwrite); c += ldc;
            Update512(c, c50, va, vb, overwrite); Update512(c + 16, c51, va, vb, overwrite); c += ldc;
            Update512(c, c60, va, vb, overwrite); Update512(c + 16, c61, va, vb, overwrite); c += ldc;
            Update512(c, c70, va, vb, overwrite); Update512(c + 16, c71, va, vb, overwrite);
            return;
        }
        float* t = stackalloc float[8 * 32];
        c00.Store(t); c01.Store(t + 16); c10.Store(t + 32); c11.Store(t + 48);
        c20.Store(t + 64); c21.Store(t + 80); c30.Store(t + 96); c31.Store(t + 112);
        c40.Store(t + 128); c41.Store(t + 144); c50.Store(t + 160); c51.Store(t + 176);
        c60.Store(t + 192); c61.Store(t + 208); c70.Store(t + 224); c71.Store(t + 240);
        StoreEdge(t, 32, c, ldc, mr, nr, alpha, beta);
    }

    // ---- Portable: 4 x (2 * Vector<float>.Count), for CPUs without AVX2 (Arm, old x64) ----------

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PortableTile(int kc, float* a, float* b, float* c, long ldc, int mr, int nr, float alpha, float beta)
    {
        int w = Vector<float>.Count;
        Vector<float> c00 = default, c01 = default, c10 = default, c11 = default;
        Vector<float> c20 = default, c21 = default, c30 = default, c31 = default;
        for (int p = 0; p < kc; p++)
        {
            Vector<float> b0 = Vector.Load(b), b1 = Vector.Load(b + w), av;
            av = new Vector<float>(a[0]); c00 = Vector.FusedMultiplyAdd(av, b0, c00); c01 = Vector.FusedMultiplyAdd(av, b1, c01);
            av = new Vector<float>(a[1]); c10 = Vector.FusedMultiplyAdd(av, b0, c10); c11 = Vector.FusedMultiplyAdd(av, b1, c11);
            av = new Vector<float>(a[2]); c20 = Vector.FusedMultiplyAdd(av, b0, c20); c21 = Vector.FusedMultiplyAdd(av, b1, c21);
            av = new Vector<float>(a[3]); c30 = Vector.FusedMultiplyAdd(av, b0, c30); c31 = Vector.FusedMultiplyAdd(av, b1, c31);
            a += 4; b += 2 * w;
        }
        int nrFull = 2 * w;
        float* t = stackalloc float[4 * nrFull];
        c00.Store(t); c01.Store(t + w); c10.Store(t + nrFull); c11.Store(t + nrFull + w);
        c20.Store(t + 2 * nrFull); c21.Store(t + 2 * nrFull + w); c30.Store(t + 3 * nrFull); c31.Store(t + 3 * nrFull + w);
        // Same formula as the vector kernels' full tiles, element by element: the results match bitwise.
        StoreEdge(t, nrFull, c, ldc, mr, nr, alpha, beta);
    }
}
