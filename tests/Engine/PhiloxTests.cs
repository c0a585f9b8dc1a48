using NativeSparsity.Engine.Random;
using NUnit.Framework;

namespace NativeSparsity.Tests.Engine;

public class PhiloxTests
{
    // Random123's published known-answer vectors for philox4x32-10: (counter, key) -> output.
    [TestCase(0x00000000u, 0x00000000u, 0x00000000u, 0x00000000u, 0x00000000u, 0x00000000u,
              0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u)]
    [TestCase(0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu,
              0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu)]
    [TestCase(0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u, 0xa4093822u, 0x299f31d0u,
              0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u)]
    public void KnownAnswerVectors(uint c0, uint c1, uint c2, uint c3, uint k0, uint k1,
                                   uint e0, uint e1, uint e2, uint e3)
    {
        var (r0, r1, r2, r3) = Philox.Block(c0, c1, c2, c3, k0, k1);
        Assert.That(new[] { r0, r1, r2, r3 }, Is.EqualTo(new[] { e0, e1, e2, e3 }));
    }

    [Test]
    public void AddressingMapsElementToBlockWordAndStream()
    {
        ulong seed = 0x0123456789abcdefUL, stream = 0x00000002_00000001UL, block = 0x5_0000_0007UL;
        var expected = Philox.Block(0x00000007, 0x5, 0x00000001, 0x00000002, 0x89abcdef, 0x01234567);
        var words = new[] { expected.Item1, expected.Item2, expected.Item3, expected.Item4 };
        for (uint lane = 0; lane < 4; lane++)
            Assert.That(Philox.Bits(seed, stream, block * 4 + lane), Is.EqualTo(words[lane]));
    }

    [Test]
    public void UniformIsInUnitIntervalWithRightMoments()
    {
        const int n = 200_000;
        double sum = 0, sumSq = 0;
        float min = 1, max = 0;
        for (int i = 0; i < n; i++)
        {
            float u = Philox.Uniform(42, 3, (ulong)i);
            sum += u; sumSq += u * (double)u;
            min = Math.Min(min, u); max = Math.Max(max, u);
        }
        double mean = sum / n, variance = sumSq / n - mean * mean;
        // Standard error of the mean is 0.29/sqrt(n) ~ 6.5e-4; 10 sigma keeps this from ever flaking.
        Assert.That(mean, Is.EqualTo(0.5).Within(0.0065));
        Assert.That(variance, Is.EqualTo(1.0 / 12).Within(0.003));
        Assert.That(min, Is.GreaterThanOrEqualTo(0f));
        Assert.That(max, Is.LessThan(1f));
    }

    [Test]
    public void NormalHasZeroMeanUnitVarianceAndGaussianTails()
    {
        const int n = 200_000;
        double sum = 0, sumSq = 0;
        int beyondTwoSigma = 0;
        for (int i = 0; i < n; i++)
        {
            double z = Philox.Normal(7, 0, (ulong)i);
            Assert.That(double.IsFinite(z), $"draw {i} is not finite");
            sum += z; sumSq += z * z;
            if (Math.Abs(z) > 2) beyondTwoSigma++;
        }
        double mean = sum / n, variance = sumSq / n - mean * mean;
        Assert.That(mean, Is.EqualTo(0).Within(0.025));
        Assert.That(variance, Is.EqualTo(1).Within(0.03));
        // P(|z| > 2) = 0.0455 for a Gaussian.
        Assert.That(beyondTwoSigma / (double)n, Is.EqualTo(0.0455).Within(0.005));
    }

    [Test]
    public void BernoulliRateMatchesProbability()
    {
        const int n = 100_000;
        foreach (float p in new[] { 0f, 0.1f, 0.5f, 0.9f })
        {
            int hits = 0;
            for (int i = 0; i < n; i++) if (Philox.Bernoulli(11, 5, (ulong)i, p)) hits++;
            Assert.That(hits / (double)n, Is.EqualTo(p).Within(0.01), $"p = {p}");
        }
    }

    [Test]
    public void StreamsAndSeedsGiveDifferentSequences()
    {
        int sameStream = 0, sameSeed = 0;
        for (ulong i = 0; i < 1000; i++)
        {
            if (Philox.Bits(1, 0, i) == Philox.Bits(1, 1, i)) sameStream++;
            if (Philox.Bits(1, 0, i) == Philox.Bits(2, 0, i)) sameSeed++;
        }
        Assert.That(sameStream, Is.LessThan(3));
        Assert.That(sameSeed, Is.LessThan(3));
    }

    [Test]
    public void FillMatchesElementwiseDraws()
    {
        var buf = new float[37];
        Philox.FillNormal(buf, 9, 4, 1001, mean: 1f, std: 0.5f);
        for (int i = 0; i < buf.Length; i++)
            Assert.That(buf[i], Is.EqualTo(1f + 0.5f * Philox.Normal(9, 4, 1001 + (ulong)i)));
    }
}
