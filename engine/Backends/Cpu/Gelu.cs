using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using NativeSparsity.Engine.Tensors;

namespace NativeSparsity.Engine.Backends.Cpu;

// GELU in BERT's erf form: y = 0.5 x (1 + erf(x / sqrt 2)). The erf is CpuErf below.
public sealed unsafe partial class CpuBackend
{
    private const int GeluChunk = 16_384;

    public void GeluForward(Tensor x, Tensor y)
    {
        ExpectMatchingF32(x, y, nameof(x), nameof(y));
        float* px = x.F32(), py = y.F32();
        CpuParallel.ForRange(x.Length, GeluChunk, (start, end) =>
            CpuErf.GeluForwardSpan(px + start, py + start, (int)(end - start)));
    }

    public void GeluBackward(Tensor x, Tensor dy, Tensor dx)
    {
        ExpectMatchingF32(x, dy, nameof(x), nameof(dy));
        ExpectMatchingF32(x, dx, nameof(x), nameof(dx));
        float* px = x.F32(), pdy = dy.F32(), pdx = dx.F32();
        CpuParallel.ForRange(x.Length, GeluChunk, (start, end) =>
            CpuErf.GeluBackwardSpan(px + start, pdy + start, pdx + start, (int)(end - start)));
    }
}

/// <summary>
/// Vectorised single-precision erf and the GELU kernels built on it (.NET has no erf).
///
/// Approximation (coefficients fitted for this file by Chebyshev interpolation of the double erf,
/// then rounded to float; exp is the float <see cref="VectorExp"/>):
///   |x| &lt; 1:        erf(x) = x + x * R(x^2),   R a degree-6 polynomial (R(0) = 2/sqrt(pi) - 1);
///                    writing erf as x + x*R keeps the rounding of the large 2/sqrt(pi) term out.
///   1 &lt;= |x| &lt; 3.92: erf(|x|) = 1 - exp(Q(|x|)), Q a degree-9 polynomial fitting log erfc;
///   |x| &gt;= 3.92:     erf = +-1 (erfc(3.92) &lt; 5.2e-8, under half a float ulp of 1).
/// The fits themselves are within 1.2e-9 of erf in exact arithmetic; evaluated in float with FMA
/// and the runtime's vector exp, the maximum absolute error measured over a 2^-14 grid on [-7, 7]
/// (plus random and branch-edge points) is 7.0e-8, near x = 1.01, i.e. about 1 ulp of values near
/// 1; GeluTests.ErfIsAccurateOnADenseGrid holds it under 1e-7 against a double series reference. For GELU the same pieces give 1 + erf(z) directly (exp(Q) for z &lt;= -1), so the
/// negative tail keeps its relative accuracy instead of cancelling in 1 + erf.
/// </summary>
internal static unsafe class CpuErf
{
    private const float ErfSplit = 1f;
    private const float ErfSaturation = 3.92f;
    private const float InvSqrt2 = 0.707106781186547524f;
    private const float InvSqrt2Pi = 0.398942280401432678f;

    /// <summary>y = erf(x) elementwise with the approximation above; y may be x.</summary>
    internal static void Erf(ReadOnlySpan<float> x, Span<float> y)
    {
        if (y.Length != x.Length) throw new ArgumentException($"erf: destination holds {y.Length} elements, source {x.Length}");
        fixed (float* px = x)
        fixed (float* py = y)
        {
            int n = x.Length, i = 0;
            for (; i + Vector256<float>.Count <= n; i += Vector256<float>.Count)
                Vector256.Store(ErfVector(Vector256.Load(px + i)), py + i);
            if (i < n)
            {
                // The tail goes through the same vector code so every element gets identical rounding.
                float* buf = stackalloc float[Vector256<float>.Count];
                var tail = LoadTail(px + i, n - i, buf);
                StoreTail(ErfVector(tail), py + i, n - i);
            }
        }
    }

    internal static void GeluForwardSpan(float* x, float* y, int n)
    {
        int i = 0;
        for (; i + Vector256<float>.Count <= n; i += Vector256<float>.Count)
            Vector256.Store(GeluVector(Vector256.Load(x + i)), y + i);
        if (i < n)
        {
            float* buf = stackalloc float[Vector256<float>.Count];
            StoreTail(GeluVector(LoadTail(x + i, n - i, buf)), y + i, n - i);
        }
    }

    internal static void GeluBackwardSpan(float* x, float* dy, float* dx, int n)
    {
        int i = 0;
        for (; i + Vector256<float>.Count <= n; i += Vector256<float>.Count)
            Vector256.Store(Vector256.Load(dy + i) * GeluDerivativeVector(Vector256.Load(x + i)), dx + i);
        if (i < n)
        {
            float* bx = stackalloc float[Vector256<float>.Count];
            float* bdy = stackalloc float[Vector256<float>.Count];
            var g = GeluDerivativeVector(LoadTail(x + i, n - i, bx));
            StoreTail(LoadTail(dy + i, n - i, bdy) * g, dx + i, n - i);
        }
    }

    internal static Vector256<float> LoadTail(float* src, int count, float* buffer)
    {
        for (int k = 0; k < Vector256<float>.Count; k++) buffer[k] = k < count ? src[k] : 0f;
        return Vector256.Load(buffer);
    }

    internal static void StoreTail(Vector256<float> v, float* dst, int count)
    {
        for (int k = 0; k < count; k++) dst[k] = v.GetElement(k);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> GeluVector(Vector256<float> x)
    {
        var onePlusErf = OnePlusErfVector(x * Vector256.Create(InvSqrt2));
        return Vector256.Create(0.5f) * x * onePlusErf;
    }

    /// <summary>gelu'(x) = 0.5 (1 + erf(x/sqrt2)) + x exp(-x^2/2) / sqrt(2 pi).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> GeluDerivativeVector(Vector256<float> x)
    {
        var cdf = Vector256.Create(0.5f) * OnePlusErfVector(x * Vector256.Create(InvSqrt2));
        var density = VectorExp.Exp(Vector256.Create(-0.5f) * x * x) * Vector256.Create(InvSqrt2Pi);
        return Vector256.FusedMultiplyAdd(x, density, cdf);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> ErfVector(Vector256<float> x)
    {
        var a = Vector256.Abs(x);
        var small = ErfSmall(a);
        if (Vector256.LessThanAll(a, Vector256.Create(ErfSplit))) return small | (x & Vector256.Create(-0f));
        var big = Vector256<float>.One - ErfcLarge(a);
        var magnitude = Vector256.ConditionalSelect(Vector256.LessThan(a, Vector256.Create(ErfSplit)), small, big);
        var signed = magnitude | (x & Vector256.Create(-0f));
        // NaN in, NaN out (the selects above would otherwise turn it into 1).
        return Vector256.ConditionalSelect(Vector256.Equals(x, x), signed, x);
    }

    /// <summary>1 + erf(z), with no cancellation for negative z.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> OnePlusErfVector(Vector256<float> z)
    {
        var a = Vector256.Abs(z);
        var signBit = z & Vector256.Create(-0f);
        var small = Vector256<float>.One + (ErfSmall(a) | signBit);
        // Most activations have |z| < 1 in every lane: the select below would pick `small`
        // anyway, so skipping the erfc branch changes no bit of the result.
        if (Vector256.LessThanAll(a, Vector256.Create(ErfSplit))) return small;
        var erfc = ErfcLarge(a);
        var big = Vector256.ConditionalSelect(Vector256.LessThan(z, Vector256<float>.Zero), erfc, Vector256.Create(2f) - erfc);
        return Vector256.ConditionalSelect(Vector256.LessThan(a, Vector256.Create(ErfSplit)), small, big);
    }

    /// <summary>erf(a) for 0 &lt;= a &lt; 1.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> ErfSmall(Vector256<float> a)
    {
        var u = a * a;
        var r = Vector256.Create(7.875874871e-05f);
        r = Vector256.FusedMultiplyAdd(r, u, Vector256.Create(-8.016864303e-04f));
        r = Vector256.FusedMultiplyAdd(r, u, Vector256.Create(5.189087242e-03f));
        r = Vector256.FusedMultiplyAdd(r, u, Vector256.Create(-2.685421146e-02f));
        r = Vector256.FusedMultiplyAdd(r, u, Vector256.Create(1.128359437e-01f));
        r = Vector256.FusedMultiplyAdd(r, u, Vector256.Create(-3.761262596e-01f));
        r = Vector256.FusedMultiplyAdd(r, u, Vector256.Create(1.283791661e-01f));
        return Vector256.FusedMultiplyAdd(a, r, a);
    }

    /// <summary>erfc(a) for 1 &lt;= a; exactly 0 from <see cref="ErfSaturation"/> on.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> ErfcLarge(Vector256<float> a)
    {
        var inRange = Vector256.LessThan(a, Vector256.Create(ErfSaturation));
        var t = Vector256.ConditionalSelect(inRange, a, Vector256.Create(ErfSaturation));
        var q = Vector256.Create(-6.364583527e-08f);
        q = Vector256.FusedMultiplyAdd(q, t, Vector256.Create(3.055585012e-06f));
        q = Vector256.FusedMultiplyAdd(q, t, Vector256.Create(-5.977114415e-05f));
        q = Vector256.FusedMultiplyAdd(q, t, Vector256.Create(6.721610553e-04f));
        q = Vector256.FusedMultiplyAdd(q, t, Vector256.Create(-5.018544849e-03f));
        q = Vector256.FusedMultiplyAdd(q, t, Vector256.Create(2.699729055e-02f));
        q = Vector256.FusedMultiplyAdd(q, t, Vector256.Create(-1.109089479e-01f));
        q = Vector256.FusedMultiplyAdd(q, t, Vector256.Create(-6.310834289e-01f));
        q = Vector256.FusedMultiplyAdd(q, t, Vector256.Create(-1.130609274e+00f));
        q = Vector256.FusedMultiplyAdd(q, t, Vector256.Create(4.019574553e-04f));
        return Vector256.ConditionalSelect(inRange, VectorExp.Exp(q), Vector256<float>.Zero);
    }
}
