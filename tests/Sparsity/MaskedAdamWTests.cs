using NativeSparsity.Engine.Backends;
using NativeSparsity.Engine.Backends.Cpu;
using NativeSparsity.Engine.Optim;
using NativeSparsity.Engine.Tensors;
using NativeSparsity.Tests.Engine;
using NUnit.Framework;
using static NativeSparsity.Tests.Sparsity.SparsityTestData;

namespace NativeSparsity.Tests.Sparsity;

public class MaskedAdamWTests
{
    private readonly CpuBackend _cpu = new();

    /// <summary>Plain float64 AdamW (torch.optim.AdamW): decay, moments, bias-corrected step.</summary>
    private sealed class ReferenceAdamW(double[] p)
    {
        public readonly double[] P = p, M = new double[p.Length], V = new double[p.Length];

        public void Step(float[] grad, in AdamWParameters h, double clip)
        {
            double bc1 = 1 - Math.Pow(h.Beta1, h.Step), bc2 = 1 - Math.Pow(h.Beta2, h.Step);
            for (int i = 0; i < P.Length; i++)
            {
                double g = grad[i] * clip;
                P[i] *= 1 - (double)h.LearningRate * h.WeightDecay;
                M[i] = h.Beta1 * M[i] + (1 - (double)h.Beta1) * g;
                V[i] = h.Beta2 * V[i] + (1 - (double)h.Beta2) * g * g;
                P[i] -= h.LearningRate * (M[i] / bc1) / (Math.Sqrt(V[i] / bc2) + h.Epsilon);
            }
        }
    }

    private static bool IsPositiveZero(float x) => BitConverter.SingleToInt32Bits(x) == 0;

    [Test]
    public void MaskedWeightsStayPositiveZeroAndTheRestMatchFloat64([Values(1, 7, 1000, 20_001)] int n)
    {
        var rng = new System.Random(TestUtil.FreshSeed());
        var p0 = TestUtil.RandomNormals(rng, n, 0.5f);
        var keep = Enumerable.Range(0, n).Select(_ => (byte)(rng.Next(3) == 0 ? 0 : 1)).ToArray();
        if (n == 1) keep[0] = 1;
        // Masked positions start as -0.5 (so a multiply by zero would leave -0) and with stale moments.
        for (int i = 0; i < n; i++) if (keep[i] == 0) p0[i] = -0.5f;
        var param = TestUtil.Upload(_cpu, p0);
        var m = TestUtil.Upload(_cpu, Enumerable.Repeat(-0.125f, n).ToArray());
        var v = TestUtil.Upload(_cpu, Enumerable.Repeat(0.25f, n).ToArray());
        var m0 = TestUtil.Download(m); var v0 = TestUtil.Download(v);
        for (int i = 0; i < n; i++) if (keep[i] != 0) { m0[i] = 0; v0[i] = 0; }
        _cpu.CopyFromHost<float>(m0, m); _cpu.CopyFromHost<float>(v0, v);
        var mask = TestUtil.Upload(_cpu, keep);
        var grad = _cpu.Allocate(DType.F32, n);
        var normSq = _cpu.Allocate(DType.F32, 1);
        var reference = new ReferenceAdamW(p0.Select(x => (double)x).ToArray());

        for (int step = 1; step <= 200; step++)
        {
            var g = TestUtil.RandomNormals(rng, n, 0.1f + 0.01f * (step % 7));
            _cpu.CopyFromHost<float>(g, grad);
            // Clip in some steps: the norm counts only kept weights, as a masked model's gradient would.
            double sq = 0;
            for (int i = 0; i < n; i++) if (keep[i] != 0) sq += (double)g[i] * g[i];
            float maxNorm = step % 3 == 0 ? (float)(0.5 * Math.Sqrt(sq)) : 0f;
            _cpu.CopyFromHost<float>(new[] { (float)sq }, normSq);
            var h = new AdamWParameters(1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f, step, maxNorm);
            _cpu.AdamW(param, grad, m, v, mask, normSq, h);
            double clip = maxNorm > 0 ? Math.Min(1.0, maxNorm / Math.Sqrt((float)sq)) : 1.0;
            reference.Step(g, h, clip);
            var gAfter = TestUtil.Download(grad);
            for (int i = 0; i < n; i++)
                if (keep[i] == 0 && !IsPositiveZero(gAfter[i])) Assert.Fail($"step {step}: masked grad {i} is {gAfter[i]}");
        }
        var pf = TestUtil.Download(param); var mf = TestUtil.Download(m); var vf = TestUtil.Download(v);
        for (int i = 0; i < n; i++)
            if (keep[i] == 0 && !(IsPositiveZero(pf[i]) && IsPositiveZero(mf[i]) && IsPositiveZero(vf[i])))
                Assert.Fail($"masked element {i}: param {pf[i]}, m {mf[i]}, v {vf[i]}; all must be +0");
        // Float32 against float64 over 200 steps of size ~1e-3: rounding of p (~3e-8 a step) random-walks
        // to ~1e-6; 2e-5 absolute leaves room without hiding a wrong formula (one missing bias
        // correction or decay term moves weights by >1e-4).
        int[] kept = Enumerable.Range(0, n).Where(i => keep[i] != 0).ToArray();
        TestUtil.AssertClose(kept.Select(i => pf[i]).ToArray(), kept.Select(i => reference.P[i]).ToArray(), 1e-5, 2e-5, "param");
        TestUtil.AssertClose(kept.Select(i => mf[i]).ToArray(), kept.Select(i => reference.M[i]).ToArray(), 1e-4, 1e-7, "m");
        TestUtil.AssertClose(kept.Select(i => vf[i]).ToArray(), kept.Select(i => reference.V[i]).ToArray(), 1e-4, 1e-9, "v");
    }

    [Test]
    public void ClippingScalesTheGradientIntoBothMoments()
    {
        var rng = new System.Random(TestUtil.FreshSeed());
        int n = 37;
        var g = TestUtil.RandomNormals(rng, n);
        foreach (var (normSquared, maxNorm, expected) in new[] { (400f, 1f, 0.05), (0.25f, 1f, 1.0), (400f, 0f, 1.0) })
        {
            var param = TestUtil.Upload(_cpu, new float[n]);
            var m = _cpu.Allocate(DType.F32, n);
            var v = _cpu.Allocate(DType.F32, n);
            var grad = TestUtil.Upload(_cpu, g);
            _cpu.AdamW(param, grad, m, v, null, TestUtil.Upload(_cpu, new[] { normSquared }),
                new AdamWParameters(1e-3f, 0.9f, 0.999f, 1e-8f, 0f, 1, maxNorm));
            // 1 - beta is taken of the float betas: 1 - 0.999f = 0.00099998713, not 0.001.
            double c1 = 1 - (double)0.9f, c2 = 1 - (double)0.999f;
            TestUtil.AssertClose(TestUtil.Download(m), g.Select(x => c1 * x * expected).ToArray(), 1e-6, 0, $"m, clip {expected}");
            TestUtil.AssertClose(TestUtil.Download(v), g.Select(x => c2 * x * x * expected * expected).ToArray(), 1e-6, 0, $"v, clip {expected}");
            Assert.That(TestUtil.Download(grad), Is.EqualTo(g), "the gradient buffer itself is not rescaled");
        }
    }

    [Test]
    public void OneThreadAndAllThreadsAreBitwiseEqual()
    {
        var rng = new System.Random(TestUtil.FreshSeed());
        int n = 300_001;
        var p0 = TestUtil.RandomNormals(rng, n);
        var g = TestUtil.RandomNormals(rng, n);
        var keep = Enumerable.Range(0, n).Select(_ => (byte)rng.Next(2)).ToArray();
        float[] Run()
        {
            var param = TestUtil.Upload(_cpu, p0);
            var m = _cpu.Allocate(DType.F32, n);
            var v = _cpu.Allocate(DType.F32, n);
            var grad = TestUtil.Upload(_cpu, g);
            for (int step = 1; step <= 3; step++)
                _cpu.AdamW(param, grad, m, v, TestUtil.Upload(_cpu, keep), TestUtil.Upload(_cpu, new[] { 1e6f }),
                    new AdamWParameters(1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f, step, 1f));
            return TestUtil.Download(param).Concat(TestUtil.Download(m)).Concat(TestUtil.Download(v)).ToArray();
        }
        var one = WithThreads(1, Run);
        var all = WithThreads(Math.Max(2, Environment.ProcessorCount), Run);
        Assert.That(all.Select(BitConverter.SingleToInt32Bits), Is.EqualTo(one.Select(BitConverter.SingleToInt32Bits)));
    }

    [Test]
    public void OptimizerDecaysOnlyDecaySegmentsAndFollowsTheSchedule()
    {
        var rng = new System.Random(TestUtil.FreshSeed());
        int n = 50;
        var p0 = TestUtil.RandomNormals(rng, 2 * n);
        var flat = TestUtil.Upload(_cpu, p0);
        var grad = _cpu.Allocate(DType.F32, 2 * n);
        var m = _cpu.Allocate(DType.F32, 2 * n);
        var v = _cpu.Allocate(DType.F32, 2 * n);
        var segments = new[]
        {
            new AdamWSegment(flat.Slice(0, n), grad.Slice(0, n), m.Slice(0, n), v.Slice(0, n), null, Decay: true),
            new AdamWSegment(flat.Slice(n, n), grad.Slice(n, n), m.Slice(n, n), v.Slice(n, n), null, Decay: false),
        };
        var schedule = LearningRateSchedule.LinearDecay(0.01f, 4);
        var opt = new AdamWOptimizer(segments, schedule, weightDecay: 0.1f);
        var decayRef = new ReferenceAdamW(p0.Take(n).Select(x => (double)x).ToArray());
        var plainRef = new ReferenceAdamW(p0.Skip(n).Select(x => (double)x).ToArray());
        for (int step = 1; step <= 4; step++)
        {
            var g = TestUtil.RandomNormals(rng, 2 * n);
            _cpu.CopyFromHost<float>(g, grad);
            opt.Update(_cpu);
            float lr = 0.01f * (4 - (step - 1)) / 4;
            Assert.That(opt.LastLearningRate, Is.EqualTo(lr).Within(1e-9));
            decayRef.Step(g.Take(n).ToArray(), new AdamWParameters(lr, 0.9f, 0.999f, 1e-8f, 0.1f, step), 1);
            plainRef.Step(g.Skip(n).ToArray(), new AdamWParameters(lr, 0.9f, 0.999f, 1e-8f, 0f, step), 1);
        }
        Assert.That(opt.Step, Is.EqualTo(4));
        var p = TestUtil.Download(flat);
        TestUtil.AssertClose(p.Take(n).ToArray(), decayRef.P, 1e-5, 1e-6, "decayed segment");
        TestUtil.AssertClose(p.Skip(n).ToArray(), plainRef.P, 1e-5, 1e-6, "undecayed segment");
        Assert.Throws<ArgumentException>(() => new AdamWOptimizer(segments, schedule, maxGradNorm: 1f).Update(_cpu));
    }

    [Test]
    public void SchedulesMatchHuggingFaceLinearSchedule()
    {
        var decay = LearningRateSchedule.LinearDecay(1f, 10);
        Assert.That(new[] { 1, 2, 10, 11, 50 }.Select(s => decay.At(s)), Is.EqualTo(new[] { 1f, 0.9f, 0.1f, 0f, 0f }).Within(1e-7));
        var warm = LearningRateSchedule.LinearWarmupDecay(2f, 4, 10);
        Assert.That(new[] { 1, 2, 4, 5, 6, 10, 11 }.Select(s => warm.At(s)),
            Is.EqualTo(new[] { 0f, 0.5f, 1.5f, 2f, 2f * 5 / 6, 2f * 1 / 6, 0f }).Within(1e-6));
        Assert.That(LearningRateSchedule.Constant(3e-4f).At(1000), Is.EqualTo(3e-4f));
        Assert.Throws<ArgumentOutOfRangeException>(() => decay.At(0));
        Assert.Throws<ArgumentOutOfRangeException>(() => LearningRateSchedule.LinearWarmupDecay(1f, 11, 10));
    }
}
