using System.Numerics;
using System.Runtime.Intrinsics;

namespace NativeSparsity.Engine.Sparsity;

/// <summary>
/// Counting over byte masks (0 = pruned, anything else = kept), vectorised: bytes are clamped to
/// 0/1, summed in byte lanes for up to 255 vectors, then widened, like a popcount over bits.
/// </summary>
internal static unsafe class MaskCounting
{
    private const int BlockVectors = 255;

    /// <summary>Number of non-zero bytes.</summary>
    internal static long CountNonZero(byte* a, long n)
    {
        var (count, _, _) = CountPair(a, a, n);
        return count;
    }

    /// <summary>(non-zero in a, non-zero in b, non-zero in both).</summary>
    internal static (long A, long B, long Both) CountPair(byte* a, byte* b, long n)
    {
        const int chunk = 1 << 20;
        int chunks = (int)((n + chunk - 1) / chunk);
        var partA = new long[chunks];
        var partB = new long[chunks];
        var partBoth = new long[chunks];
        Backends.Cpu.CpuParallel.For(chunks, c =>
        {
            long start = (long)c * chunk, end = Math.Min(n, start + chunk);
            (partA[c], partB[c], partBoth[c]) = CountRange(a + start, b + start, end - start);
        }, chunk);
        return (partA.Sum(), partB.Sum(), partBoth.Sum());
    }

    private static (long, long, long) CountRange(byte* a, byte* b, long n)
    {
        long ca = 0, cb = 0, cab = 0, i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var one = Vector256.Create((byte)1);
            while (i + 32 <= n)
            {
                var accA = Vector256<byte>.Zero;
                var accB = Vector256<byte>.Zero;
                var accAB = Vector256<byte>.Zero;
                for (int v = 0; v < BlockVectors && i + 32 <= n; v++, i += 32)
                {
                    var x = Vector256.Min(Vector256.Load(a + i), one);
                    var y = Vector256.Min(Vector256.Load(b + i), one);
                    accA += x;
                    accB += y;
                    accAB += x & y;
                }
                ca += SumBytes(accA);
                cb += SumBytes(accB);
                cab += SumBytes(accAB);
            }
        }
        for (; i < n; i++)
        {
            int x = a[i] != 0 ? 1 : 0, y = b[i] != 0 ? 1 : 0;
            ca += x; cb += y; cab += x & y;
        }
        return (ca, cb, cab);
    }

    private static long SumBytes(Vector256<byte> v)
    {
        var (lo, hi) = Vector256.Widen(v);
        return Vector256.Sum(lo + hi);
    }
}
