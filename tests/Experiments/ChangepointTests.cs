using NativeSparsity.Experiments.Studies;
using NativeSparsity.Tests.Engine;
using NUnit.Framework;

namespace NativeSparsity.Tests.Experiments;

/// <summary>The sudden-rise rule of the abrupt study on synthetic curves with and without a jump.</summary>
public class ChangepointTests
{
    private const int Probes = 201;           // 20,000 steps probed every 100, as the long runs
    private const double Noise = 0.002;       // share units: 0.2 percentage points of noise
    private const double MinJump = 0.001;

    private static double[] Steps() => Enumerable.Range(0, Probes).Select(i => 100.0 * i).ToArray();

    private static double[] Curve(Func<double, double> f, int seed, double noise = Noise)
    {
        var rng = new Random(seed);
        return Steps().Select(s =>
        {
            double u1 = 1 - rng.NextDouble(), u2 = rng.NextDouble();
            return f(s / 20000.0) + noise * Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
        }).ToArray();
    }

    private static IEnumerable<TestCaseData> Smooth()
    {
        yield return new TestCaseData((Func<double, double>)(_ => 0.3)).SetName("flat");
        yield return new TestCaseData((Func<double, double>)(t => 0.1 + 0.2 * t)).SetName("linear");
        yield return new TestCaseData((Func<double, double>)(t => 0.1 + 0.3 * t * t)).SetName("quadratic");
        yield return new TestCaseData((Func<double, double>)(t => 0.4 * (1 - Math.Exp(-t / 0.15)))).SetName("saturating");
        yield return new TestCaseData((Func<double, double>)(t => 0.2 / (1 + Math.Exp(-(t - 0.5) / 0.12)))).SetName("wide_sigmoid");
        yield return new TestCaseData((Func<double, double>)(t => 0.3 - 0.25 * t)).SetName("falling");
    }

    [TestCaseSource(nameof(Smooth))]
    public void SmoothCurvesAreNotAbrupt(Func<double, double> f)
    {
        int seed = TestUtil.FreshSeed();
        var r = Changepoint.DetectRise(Steps(), Curve(f, seed), MinJump);
        Assert.That(r.Abrupt, Is.False, $"seed {seed}: {r}");
    }

    [TestCase(0.25, 0.02)]
    [TestCase(0.55, 0.05)]
    [TestCase(0.8, 0.01)]
    public void StepOnATrendIsFoundWhereItIs(double at, double height)
    {
        int seed = TestUtil.FreshSeed();
        var r = Changepoint.DetectRise(Steps(), Curve(t => 0.05 + 0.1 * t + (t >= at ? height : 0), seed), MinJump);
        Assert.That(r.Abrupt, Is.True, $"seed {seed}: {r}");
        Assert.That(r.Step, Is.EqualTo(at * 20000).Within(200), $"seed {seed}: {r}");
        // The spline trades a little of the step against its nearest knots; the height is an estimate.
        Assert.That(r.Height, Is.EqualTo(height).Within(0.2 * height + 0.002), $"seed {seed}: {r}");
    }

    [Test]
    public void SteepSigmoidWithinTwoProbesIsAbrupt()
    {
        int seed = TestUtil.FreshSeed();
        // Width 0.3% of the run: the rise spans about two probe intervals.
        var r = Changepoint.DetectRise(Steps(), Curve(t => 0.02 + 0.1 / (1 + Math.Exp(-(t - 0.6) / 0.003)), seed), MinJump);
        Assert.That(r.Abrupt, Is.True, $"seed {seed}: {r}");
        Assert.That(r.Step, Is.EqualTo(12000).Within(300), $"seed {seed}: {r}");
    }

    [Test]
    public void JumpBelowTheMinimumIsNotReported_AndAFallIsNotARise()
    {
        int seed = TestUtil.FreshSeed();
        var tiny = Curve(t => 0.1 + (t >= 0.5 ? 0.0005 : 0), seed, noise: 1e-5);
        var small = Changepoint.DetectRise(Steps(), tiny, MinJump);
        Assert.That(small.DeltaBic, Is.GreaterThan(Changepoint.MinDeltaBic), $"seed {seed}: the step is significant: {small}");
        Assert.That(small.Abrupt, Is.False, $"seed {seed}: but smaller than the minimum: {small}");
        var fall = Changepoint.DetectRise(Steps(), Curve(t => 0.2 - (t >= 0.4 ? 0.05 : 0), seed), MinJump);
        Assert.That(fall.Abrupt, Is.False, $"seed {seed}: {fall}");
        Assert.That(fall.Height, Is.LessThan(0));
    }

    [Test]
    public void NoiseFreeAndDegenerateCurves()
    {
        var steps = Steps();
        Assert.That(Changepoint.DetectRise(steps, steps.Select(_ => 0.0).ToArray(), MinJump).Abrupt, Is.False, "all zeros");
        var exact = steps.Select(s => s >= 10000 ? 0.1 : 0.0).ToArray();
        var r = Changepoint.DetectRise(steps, exact, MinJump);
        Assert.That(r.Abrupt, Is.True, r.ToString());
        Assert.That(r.Step, Is.EqualTo(10000));
        Assert.That(Changepoint.DetectRise(steps[..5], exact[..5], MinJump).Abrupt, Is.False, "too few probes");
        var withGaps = exact.Select((v, i) => i % 7 == 3 ? double.NaN : v).ToArray();
        Assert.That(Changepoint.DetectRise(steps, withGaps, MinJump).Step, Is.EqualTo(10000), "NaN probes are skipped");
    }
}
