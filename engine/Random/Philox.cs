using System.Runtime.CompilerServices;

namespace NativeSparsity.Engine.Random;

/// <summary>
/// Philox4x32-10 (Salmon, Moraes, Dror, Shaw, SC'11): a counter-based generator, so element i of
/// any draw is a pure function of (seed, stream, i) and a GPU kernel reproduces it exactly.
///
/// Addressing, shared by every backend (kernels/philox.cuh does the same):
///   key     = (seed low 32 bits, seed high 32 bits)
///   counter = (block low, block high, stream low, stream high) with block = i / 4
///   element i is output word i % 4 of that block.
/// Draws: uniform float in [0,1) from the top 24 bits; normal by Box-Muller over the block's word
/// pairs (0,1) and (2,3), cosine branch for even i, sine branch for odd i.
/// </summary>
public static class Philox
{
    private const uint M0 = 0xD2511F53, M1 = 0xCD9E8D57;
    private const uint W0 = 0x9E3779B9, W1 = 0xBB67AE85;

    /// <summary>One Philox4x32-10 block: ten rounds of the counter under the key.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static (uint, uint, uint, uint) Block(uint c0, uint c1, uint c2, uint c3, uint k0, uint k1)
    {
        for (int round = 0; round < 10; round++)
        {
            if (round > 0) { k0 += W0; k1 += W1; }
            ulong p0 = (ulong)M0 * c0;
            ulong p1 = (ulong)M1 * c2;
            uint n0 = (uint)(p1 >> 32) ^ c1 ^ k0;
            uint n1 = (uint)p1;
            uint n2 = (uint)(p0 >> 32) ^ c3 ^ k1;
            uint n3 = (uint)p0;
            c0 = n0; c1 = n1; c2 = n2; c3 = n3;
        }
        return (c0, c1, c2, c3);
    }

    /// <summary>The four 32-bit words of block number <paramref name="block"/> of (seed, stream).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static (uint, uint, uint, uint) Words(ulong seed, ulong stream, ulong block) =>
        Block((uint)block, (uint)(block >> 32), (uint)stream, (uint)(stream >> 32), (uint)seed, (uint)(seed >> 32));

    /// <summary>Raw 32-bit word for element <paramref name="index"/>.</summary>
    public static uint Bits(ulong seed, ulong stream, ulong index)
    {
        var (a, b, c, d) = Words(seed, stream, index >> 2);
        return (index & 3) switch { 0 => a, 1 => b, 2 => c, _ => d };
    }

    /// <summary>Maps a word to [0, 1) with 24 bits of resolution (exact in float32).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float ToUniform(uint bits) => (bits >> 8) * (1.0f / 16777216.0f);

    /// <summary>Uniform float in [0, 1) for element <paramref name="index"/>.</summary>
    public static float Uniform(ulong seed, ulong stream, ulong index) => ToUniform(Bits(seed, stream, index));

    /// <summary>Bernoulli draw: true with probability <paramref name="p"/>.</summary>
    public static bool Bernoulli(ulong seed, ulong stream, ulong index, float p) => Uniform(seed, stream, index) < p;

    /// <summary>Standard normal for element <paramref name="index"/> (Box-Muller on the word pair).</summary>
    public static float Normal(ulong seed, ulong stream, ulong index)
    {
        var (a, b, c, d) = Words(seed, stream, index >> 2);
        bool secondPair = (index & 2) != 0;
        uint u = secondPair ? c : a, v = secondPair ? d : b;
        return BoxMuller(u, v, (index & 1) != 0);
    }

    /// <summary>
    /// Box-Muller from two words; u is shifted into (0, 1] so the log never sees zero. Computed in
    /// double and rounded once, so a GPU using double math gets the same float.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float BoxMuller(uint u, uint v, bool sine)
    {
        double u1 = ((u >> 8) + 1.0) * (1.0 / 16777216.0);
        double u2 = (v >> 8) * (1.0 / 16777216.0);
        double radius = Math.Sqrt(-2.0 * Math.Log(u1));
        double angle = 2.0 * Math.PI * u2;
        return (float)(radius * (sine ? Math.Sin(angle) : Math.Cos(angle)));
    }

    /// <summary>Fills <paramref name="dst"/> with uniforms for elements counter, counter+1, ...</summary>
    public static void FillUniform(Span<float> dst, ulong seed, ulong stream, ulong counter)
    {
        for (int i = 0; i < dst.Length; i++) dst[i] = Uniform(seed, stream, counter + (ulong)i);
    }

    /// <summary>Fills <paramref name="dst"/> with mean + std * N(0,1) for elements counter, counter+1, ...</summary>
    public static void FillNormal(Span<float> dst, ulong seed, ulong stream, ulong counter, float mean = 0f, float std = 1f)
    {
        for (int i = 0; i < dst.Length; i++) dst[i] = mean + std * Normal(seed, stream, counter + (ulong)i);
    }
}
