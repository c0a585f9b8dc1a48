using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using NativeSparsity.Engine.Tensors;

namespace NativeSparsity.Engine.Backends.Cpu;

public sealed unsafe partial class CpuBackend
{
    /// <summary>
    /// Y = X W^T + beta Y with W pruned: X [m, w.Cols] (row stride ldx), Y [m, w.Rows] (row stride
    /// ldy), the forward pass of a pruned linear layer. Work is proportional to W's kept weights.
    /// Bitwise independent of the thread count (see <see cref="CpuSparseGemm"/>).
    /// </summary>
    /// <summary>The sparse forward kernel this machine runs ("AVX2" or "portable").</summary>
    public static string SparseGemmKernel => CpuSparseGemm.UseAvx2 ? "AVX2" : "portable";

    public void SparseGemm(int m, Tensor x, int ldx, SparseRowMatrix w, float beta, Tensor y, int ldy)
    {
        ArgumentNullException.ThrowIfNull(w);
        if (m < 0) throw new ArgumentException($"SparseGemm: m must be non-negative, got {m}");
        if (ldx < Math.Max(1, w.Cols) || ldy < Math.Max(1, w.Rows))
            throw new ArgumentException($"SparseGemm: ldx = {ldx} must be at least {w.Cols} and ldy = {ldy} at least {w.Rows}");
        if (m > 0 && (x.Length < (long)(m - 1) * ldx + w.Cols || y.Length < (long)(m - 1) * ldy + w.Rows))
            throw new ArgumentException($"SparseGemm: X {x} or Y {y} is too small for m = {m}, W [{w.Rows}, {w.Cols}]");
        if (x.DType != DType.F32 || y.DType != DType.F32) throw new ArgumentException("SparseGemm: X and Y must be F32");
        CpuSparseGemm.Run(m, x.F32(), ldx, w, beta, y.F32(), ldy, CpuParallel.MaxThreads);
    }
}

/// <summary>
/// The sparse x dense forward product Y = X W^T of a pruned weight in CSR by output row. Tokens go
/// in tiles of <see cref="Tile"/>; a tile of X is transposed once into [in][Tile] (so each kept
/// weight meets one 64-byte line of 16 tokens), then every output row runs over its kept weights
/// with the token lanes in registers: two 8-wide accumulators per weight in flight, four weights in
/// flight (eight independent FMA chains, enough to cover FMA latency), summed in a fixed order at
/// the end of the row. The Y^T tile is transposed back into Y 8 x 8 at a time. Tasks are token
/// tiles and every element is computed by the same chain whichever task, thread or kernel runs it
/// (the portable kernel does the AVX2 arithmetic lane by lane, with fused multiply-adds), so the
/// result is bitwise the same for any thread count and on any machine.
/// </summary>
internal static unsafe partial class CpuSparseGemm
{
    /// <summary>Tokens per tile: 16 floats = one cache line per kept weight.</summary>
    internal const int Tile = 16;

    /// <summary>Tests force the portable kernel here.</summary>
    internal static bool ForcePortable { get; set; }

    /// <summary>
    /// Tests force the AVX-512 forward kernel here; it then runs under .NET's software Vector512
    /// on machines without AVX-512 (like ours), which checks its arithmetic, never its speed.
    /// </summary>
    internal static bool ForceAvx512 { get; set; }

    internal static bool UseAvx2 => !ForcePortable && Avx2.IsSupported && Fma.IsSupported;

    /// <summary>Only where Vector512 runs in hardware (or a test forces it): emulated it is far slower than AVX2.</summary>
    internal static bool UseAvx512 => ForceAvx512 || (!ForcePortable && Vector512.IsHardwareAccelerated && Avx512F.IsSupported);

    public static void Run(int m, float* x, int ldx, SparseRowMatrix w, float beta, float* y, int ldy, int threads)
    {
        if (m == 0 || w.Rows == 0) return;
        int tiles = (m + Tile - 1) / Tile;
        int rows = w.Rows, cols = w.Cols;
        fixed (int* rowStart = w.RowStart, columns = w.Columns)
        fixed (float* values = w.Values)
        {
            int* rs = rowStart, cs = columns;
            float* vs = values;
            void Body(int tile)
            {
                int t0 = tile * Tile, valid = Math.Min(Tile, m - t0);
                float* xt = GemmBuffer.ForA((long)cols * Tile);
                float* yt = GemmBuffer.ForOutput((long)rows * Tile);
                PackTransposed(x + (long)t0 * ldx, ldx, valid, cols, xt, Tile);
                if (UseAvx512) RowsAvx512(rs, cs, vs, rows, xt, yt);
                else if (UseAvx2) RowsAvx2(rs, cs, vs, rows, xt, yt);
                else RowsPortable(rs, cs, vs, rows, xt, yt);
                StoreTransposed(yt, rows, valid, beta, y + (long)t0 * ldy, ldy);
            }
            // Work per tile: the kept weights times 16 tokens; tiny products stay on the caller.
            long work = w.NonZeros * Tile + (long)(rows + cols) * Tile;
            if (threads <= 1 || tiles == 1) for (int t = 0; t < tiles; t++) Body(t);
            else CpuParallel.For(tiles, Body, work);
        }
    }

    /// <summary>xt[i * stride + j] = x[j * ldx + i] for j &lt; valid, 0 for the padding tokens up to <see cref="Tile"/>.</summary>
    private static void PackTransposed(float* x, int ldx, int valid, int cols, float* xt, int stride)
    {
        int i0 = 0;
        if (UseAvx2 && valid == Tile)
        {
            for (; i0 + 8 <= cols; i0 += 8)
                for (int h = 0; h < Tile; h += 8)
                {
                    float* s = x + (long)h * ldx + i0;
                    var r0 = Avx.LoadVector256(s); var r1 = Avx.LoadVector256(s + ldx);
                    var r2 = Avx.LoadVector256(s + 2 * ldx); var r3 = Avx.LoadVector256(s + 3 * ldx);
                    var r4 = Avx.LoadVector256(s + 4 * ldx); var r5 = Avx.LoadVector256(s + 5 * ldx);
                    var r6 = Avx.LoadVector256(s + 6 * ldx); var r7 = Avx.LoadVector256(s + 7 * ldx);
                    GemmPacking.Transpose8x8(ref r0, ref r1, ref r2, ref r3, ref r4, ref r5, ref r6, ref r7);
                    float* d = xt + (long)i0 * stride + h;
                    Avx.Store(d, r0); Avx.Store(d + stride, r1); Avx.Store(d + 2 * stride, r2); Avx.Store(d + 3 * stride, r3);
                    Avx.Store(d + 4 * stride, r4); Avx.Store(d + 5 * stride, r5); Avx.Store(d + 6 * stride, r6); Avx.Store(d + 7 * stride, r7);
                }
        }
        for (int i = i0; i < cols; i++)
        {
            float* d = xt + (long)i * stride;
            for (int j = 0; j < valid; j++) d[j] = x[(long)j * ldx + i];
            for (int j = valid; j < Tile; j++) d[j] = 0f;
        }
    }

    /// <summary>y[j * ldy + o] = yt[o * Tile + j] (+ beta * y) for the valid tokens.</summary>
    private static void StoreTransposed(float* yt, int rows, int valid, float beta, float* y, int ldy)
    {
        int o0 = 0;
        if (UseAvx2 && valid == Tile)
        {
            var b = Vector256.Create(beta);
            for (; o0 + 8 <= rows; o0 += 8)
                for (int h = 0; h < Tile; h += 8)
                {
                    float* s = yt + (long)o0 * Tile + h;
                    var r0 = Avx.LoadVector256(s); var r1 = Avx.LoadVector256(s + Tile);
                    var r2 = Avx.LoadVector256(s + 2 * Tile); var r3 = Avx.LoadVector256(s + 3 * Tile);
                    var r4 = Avx.LoadVector256(s + 4 * Tile); var r5 = Avx.LoadVector256(s + 5 * Tile);
                    var r6 = Avx.LoadVector256(s + 6 * Tile); var r7 = Avx.LoadVector256(s + 7 * Tile);
                    GemmPacking.Transpose8x8(ref r0, ref r1, ref r2, ref r3, ref r4, ref r5, ref r6, ref r7);
                    float* d = y + (long)h * ldy + o0;
                    Put(d, r0, beta, b); Put(d + ldy, r1, beta, b); Put(d + 2 * ldy, r2, beta, b); Put(d + 3 * ldy, r3, beta, b);
                    Put(d + 4 * ldy, r4, beta, b); Put(d + 5 * ldy, r5, beta, b); Put(d + 6 * ldy, r6, beta, b); Put(d + 7 * ldy, r7, beta, b);
                }
        }
        for (int j = 0; j < valid; j++)
        {
            float* d = y + (long)j * ldy;
            for (int o = o0; o < rows; o++)
                d[o] = beta == 0f ? yt[(long)o * Tile + j] : MathF.FusedMultiplyAdd(beta, d[o], yt[(long)o * Tile + j]);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Put(float* d, Vector256<float> v, float beta, Vector256<float> b)
    {
        if (beta == 0f) Avx.Store(d, v);          // beta = 0 never reads Y (it may hold NaNs)
        else Avx.Store(d, Fma.MultiplyAdd(b, Avx.LoadVector256(d), v));
    }

    /// <summary>yt[o * Tile + 0..16) = sum over the kept weights of row o of w * xt[col * Tile + 0..16).</summary>
    private static void RowsAvx2(int* rowStart, int* columns, float* values, int rows, float* xt, float* yt)
    {
        for (int o = 0; o < rows; o++)
        {
            int p = rowStart[o], end = rowStart[o + 1];
            var a0 = Vector256<float>.Zero; var a1 = Vector256<float>.Zero;
            var b0 = Vector256<float>.Zero; var b1 = Vector256<float>.Zero;
            var c0 = Vector256<float>.Zero; var c1 = Vector256<float>.Zero;
            var d0 = Vector256<float>.Zero; var d1 = Vector256<float>.Zero;
            for (; p + 4 <= end; p += 4)
            {
                float* xa = xt + (long)columns[p] * Tile, xb = xt + (long)columns[p + 1] * Tile;
                float* xc = xt + (long)columns[p + 2] * Tile, xd = xt + (long)columns[p + 3] * Tile;
                var wa = Vector256.Create(values[p]); var wb = Vector256.Create(values[p + 1]);
                var wc = Vector256.Create(values[p + 2]); var wd = Vector256.Create(values[p + 3]);
                a0 = Fma.MultiplyAdd(Avx.LoadVector256(xa), wa, a0); a1 = Fma.MultiplyAdd(Avx.LoadVector256(xa + 8), wa, a1);
                b0 = Fma.MultiplyAdd(Avx.LoadVector256(xb), wb, b0); b1 = Fma.MultiplyAdd(Avx.LoadVector256(xb + 8), wb, b1);
                c0 = Fma.MultiplyAdd(Avx.LoadVector256(xc), wc, c0); c1 = Fma.MultiplyAdd(Avx.LoadVector256(xc + 8), wc, c1);
                d0 = Fma.MultiplyAdd(Avx.LoadVector256(xd), wd, d0); d1 = Fma.MultiplyAdd(Avx.LoadVector256(xd + 8), wd, d1);
            }
            for (; p < end; p++)
            {
                float* xa = xt + (long)columns[p] * Tile;
                var wa = Vector256.Create(values[p]);
                a0 = Fma.MultiplyAdd(Avx.LoadVector256(xa), wa, a0); a1 = Fma.MultiplyAdd(Avx.LoadVector256(xa + 8), wa, a1);
            }
            float* d = yt + (long)o * Tile;
            Avx.Store(d, Avx.Add(Avx.Add(a0, b0), Avx.Add(c0, d0)));
            Avx.Store(d + 8, Avx.Add(Avx.Add(a1, b1), Avx.Add(c1, d1)));
        }
    }

    /// <summary>
    /// The AVX-512 forward kernel: a tile's 16 tokens are one zmm, so eight weights are kept in
    /// flight (eight chains) and summed in a fixed tree at the end of the row. Its sums differ in
    /// order from the AVX2 kernel's, so the two differ in the last bits (each is thread-independent).
    /// Not measured for speed: no machine here has AVX-512.
    /// </summary>
    private static void RowsAvx512(int* rowStart, int* columns, float* values, int rows, float* xt, float* yt)
    {
        for (int o = 0; o < rows; o++)
        {
            int p = rowStart[o], end = rowStart[o + 1];
            var a0 = Vector512<float>.Zero; var a1 = Vector512<float>.Zero; var a2 = Vector512<float>.Zero; var a3 = Vector512<float>.Zero;
            var a4 = Vector512<float>.Zero; var a5 = Vector512<float>.Zero; var a6 = Vector512<float>.Zero; var a7 = Vector512<float>.Zero;
            for (; p + 8 <= end; p += 8)
            {
                a0 = Vector512.FusedMultiplyAdd(Vector512.Load(xt + (long)columns[p] * Tile), Vector512.Create(values[p]), a0);
                a1 = Vector512.FusedMultiplyAdd(Vector512.Load(xt + (long)columns[p + 1] * Tile), Vector512.Create(values[p + 1]), a1);
                a2 = Vector512.FusedMultiplyAdd(Vector512.Load(xt + (long)columns[p + 2] * Tile), Vector512.Create(values[p + 2]), a2);
                a3 = Vector512.FusedMultiplyAdd(Vector512.Load(xt + (long)columns[p + 3] * Tile), Vector512.Create(values[p + 3]), a3);
                a4 = Vector512.FusedMultiplyAdd(Vector512.Load(xt + (long)columns[p + 4] * Tile), Vector512.Create(values[p + 4]), a4);
                a5 = Vector512.FusedMultiplyAdd(Vector512.Load(xt + (long)columns[p + 5] * Tile), Vector512.Create(values[p + 5]), a5);
                a6 = Vector512.FusedMultiplyAdd(Vector512.Load(xt + (long)columns[p + 6] * Tile), Vector512.Create(values[p + 6]), a6);
                a7 = Vector512.FusedMultiplyAdd(Vector512.Load(xt + (long)columns[p + 7] * Tile), Vector512.Create(values[p + 7]), a7);
            }
            for (; p < end; p++)
                a0 = Vector512.FusedMultiplyAdd(Vector512.Load(xt + (long)columns[p] * Tile), Vector512.Create(values[p]), a0);
            (((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7))).Store(yt + (long)o * Tile);
        }
    }

    /// <summary>The AVX2 kernel's arithmetic lane by lane: the same four chains, tail and final sum order.</summary>
    private static void RowsPortable(int* rowStart, int* columns, float* values, int rows, float* xt, float* yt)
    {
        float* acc = stackalloc float[4 * Tile];
        for (int o = 0; o < rows; o++)
        {
            int p = rowStart[o], end = rowStart[o + 1];
            new Span<float>(acc, 4 * Tile).Clear();
            for (; p + 4 <= end; p += 4)
                for (int u = 0; u < 4; u++)
                {
                    float* xa = xt + (long)columns[p + u] * Tile, a = acc + u * Tile;
                    float wv = values[p + u];
                    for (int j = 0; j < Tile; j++) a[j] = MathF.FusedMultiplyAdd(xa[j], wv, a[j]);
                }
            for (; p < end; p++)
            {
                float* xa = xt + (long)columns[p] * Tile;
                float wv = values[p];
                for (int j = 0; j < Tile; j++) acc[j] = MathF.FusedMultiplyAdd(xa[j], wv, acc[j]);
            }
            float* d = yt + (long)o * Tile;
            for (int j = 0; j < Tile; j++) d[j] = (acc[j] + acc[Tile + j]) + (acc[2 * Tile + j] + acc[3 * Tile + j]);
        }
    }
}
