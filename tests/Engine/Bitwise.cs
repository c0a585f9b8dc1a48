using System.Runtime.InteropServices;
using NUnit.Framework;

namespace NativeSparsity.Tests.Engine;

/// <summary>Fast bit-for-bit array comparison (NUnit's element-wise equality is slow on large arrays).</summary>
internal static class Bitwise
{
    public static void AssertEqual(ReadOnlySpan<float> actual, ReadOnlySpan<float> expected, string what)
    {
        Assert.That(actual.Length, Is.EqualTo(expected.Length), $"{what}: length mismatch");
        for (int i = 0; i < actual.Length; i++)
            if (BitConverter.SingleToInt32Bits(actual[i]) != BitConverter.SingleToInt32Bits(expected[i]))
                Assert.Fail($"{what}: element {i} is {actual[i]}, expected {expected[i]} bit for bit");
    }

    public static void AssertEqual<T>(T[] actual, T[] expected, string what) where T : unmanaged
    {
        Assert.That(actual.Length, Is.EqualTo(expected.Length), $"{what}: length");
        var a = MemoryMarshal.AsBytes(actual.AsSpan());
        var e = MemoryMarshal.AsBytes(expected.AsSpan());
        if (a.SequenceEqual(e)) return;
        for (int i = 0; i < actual.Length; i++)
            if (!MemoryMarshal.AsBytes(actual.AsSpan(i, 1)).SequenceEqual(MemoryMarshal.AsBytes(expected.AsSpan(i, 1))))
                Assert.Fail($"{what}: element {i} is {actual[i]}, expected {expected[i]}");
    }
}
