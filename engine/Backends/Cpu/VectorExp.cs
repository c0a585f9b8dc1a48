using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace NativeSparsity.Engine.Backends.Cpu;

/// <summary>
/// Single-precision vector exp for the softmax, cross-entropy and GELU kernels. The runtime's
/// <c>Vector256.Exp</c> / <c>TensorPrimitives.Exp</c> widen to double and cost about three times
/// as much; this one stays in float: exp(x) = 2^n exp(r) with n = round(x log2 e),
/// r = x - n ln 2 in two Cody-Waite steps (|r| &lt;= ln2 / 2), and exp(r) = 1 + r + r^2 P(r) with
/// P the degree-5 polynomial of Cephes' expf. Measured relative error under 2 ulp (VectorExpTests).
/// Inputs below -87.34 give exactly 0 (the true value is subnormal or 0), above 88.73 +infinity,
/// NaN gives NaN; between 88.38 and 88.73 the result is held at exp(88.38) (2^127.5), as n stays
/// at most 127 there. Every caller passes x &lt;= 0.
/// </summary>
internal static unsafe class VectorExp
{
    private const float Log2E = 1.44269504088896341f;
    private const float Ln2Hi = 0.693359375f;         // exact in few bits, so n * Ln2Hi is exact
    private const float Ln2Lo = -2.12194440e-4f;
    private const float Lowest = -87.33654f;          // exp below this is under the smallest normal float
    private const float Highest = 88.37626f;          // 127.5 ln 2: n stays <= 127
    private const float Overflow = 88.72284f;         // exp above this is over the largest float

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Exp(Vector256<float> x)
    {
        // MinNative/MaxNative are the plain x86 min/max; a NaN x is restored by the final select.
        var clamped = Vector256.MinNative(Vector256.MaxNative(x, Vector256.Create(Lowest)), Vector256.Create(Highest));
        var n = Vector256.Floor(Vector256.FusedMultiplyAdd(clamped, Vector256.Create(Log2E), Vector256.Create(0.5f)));
        var r = Vector256.FusedMultiplyAdd(n, Vector256.Create(-Ln2Hi), clamped);
        r = Vector256.FusedMultiplyAdd(n, Vector256.Create(-Ln2Lo), r);
        var p = Vector256.Create(1.9875691500e-4f);
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(1.3981999507e-3f));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(8.3334519073e-3f));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(4.1665795894e-2f));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(1.6666665459e-1f));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(5.0000001201e-1f));
        var er = Vector256.FusedMultiplyAdd(p, r * r, r) + Vector256<float>.One;
        // 2^n through the exponent field; n in [-126, 127].
        var ni = Avx.IsSupported ? Avx.ConvertToVector256Int32WithTruncation(n) : Vector256.ConvertToInt32(n);
        var scale = Vector256.ShiftLeft(ni + Vector256.Create(127), 23).AsSingle();
        var y = er * scale;
        y = Vector256.ConditionalSelect(Vector256.LessThan(x, Vector256.Create(Lowest)), Vector256<float>.Zero, y);
        y = Vector256.ConditionalSelect(Vector256.GreaterThan(x, Vector256.Create(Overflow)), Vector256.Create(float.PositiveInfinity), y);
        return Vector256.ConditionalSelect(Vector256.Equals(x, x), y, x);
    }

    /// <summary>y[i] = exp(x[i]); y may be x. Tails go through the same vector code.</summary>
    public static void Exp(float* x, float* y, int n)
    {
        int i = 0;
        for (; i + 8 <= n; i += 8) Exp(Vector256.Load(x + i)).Store(y + i);
        if (i < n)
        {
            float* buf = stackalloc float[8];
            StoreTail(Exp(LoadTail(x + i, n - i, buf)), y + i, n - i);
        }
    }

    /// <summary>y[i] = exp(x[i] - shift); returns the sum of y in double (lanes combined in a fixed order).</summary>
    public static double ExpShiftedSum(float* x, float shift, float* y, int n)
    {
        var vs = Vector256.Create(shift);
        Vector256<double> acc0 = default, acc1 = default;
        int i = 0;
        for (; i + 8 <= n; i += 8)
        {
            var e = Exp(Vector256.Load(x + i) - vs);
            e.Store(y + i);
            var (lo, hi) = Vector256.Widen(e);
            acc0 += lo; acc1 += hi;
        }
        var a = acc0 + acc1;
        double sum = (a.GetElement(0) + a.GetElement(1)) + (a.GetElement(2) + a.GetElement(3));
        if (i < n)
        {
            float* buf = stackalloc float[8];
            var e = Exp(LoadTail(x + i, n - i, buf) - vs);
            StoreTail(e, y + i, n - i);
            for (int k = 0; k < n - i; k++) sum += e.GetElement(k);
        }
        return sum;
    }

    private static Vector256<float> LoadTail(float* src, int count, float* buffer)
    {
        for (int k = 0; k < 8; k++) buffer[k] = k < count ? src[k] : 0f;
        return Vector256.Load(buffer);
    }

    private static void StoreTail(Vector256<float> v, float* dst, int count)
    {
        for (int k = 0; k < count; k++) dst[k] = v.GetElement(k);
    }
}
