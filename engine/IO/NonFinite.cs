using System.Numerics;
using System.Runtime.InteropServices;

namespace NativeSparsity.Engine.IO;

/// <summary>Counting NaN and infinities in weights as they are loaded: a float is non-finite when its exponent bits are all ones.</summary>
public static class NonFinite
{
    private const uint ExponentMask = 0x7F80_0000;

    public static long Count(ReadOnlySpan<float> values)
    {
        var bits = MemoryMarshal.Cast<float, uint>(values);
        long count = 0;
        int i = 0;
        if (Vector.IsHardwareAccelerated && bits.Length >= Vector<uint>.Count)
        {
            var mask = new Vector<uint>(ExponentMask);
            var hits = Vector<uint>.Zero;
            int blocks = 0;
            for (; i <= bits.Length - Vector<uint>.Count; i += Vector<uint>.Count)
            {
                // Equals gives all ones (= uint.MaxValue, i.e. -1 as int) per non-finite lane; subtracting counts it.
                hits -= Vector.Equals(new Vector<uint>(bits.Slice(i)) & mask, mask);
                if (++blocks == int.MaxValue) { count += Vector.Sum(hits); hits = Vector<uint>.Zero; blocks = 0; }
            }
            count += Vector.Sum(hits);
        }
        for (; i < bits.Length; i++)
            if ((bits[i] & ExponentMask) == ExponentMask) count++;
        return count;
    }

    /// <summary>Index of the first non-finite value, or -1.</summary>
    public static long FirstIndex(ReadOnlySpan<float> values)
    {
        for (int i = 0; i < values.Length; i++) if (!float.IsFinite(values[i])) return i;
        return -1;
    }
}
