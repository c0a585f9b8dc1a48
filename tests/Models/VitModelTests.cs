using NativeSparsity.Engine.Backends.Cpu;
using NativeSparsity.Engine.Tensors;
using NativeSparsity.Models.Bert;
using NativeSparsity.Models.Transformer;
using NativeSparsity.Models.Vit;
using NativeSparsity.Tests.Engine;
using NUnit.Framework;

namespace NativeSparsity.Tests.Models;

public class VitModelTests
{
    /// <summary>6x6 images with 2 channels, patch 3: 4 patches of 18 values, sequences of 5.</summary>
    internal static VitConfig TinyConfig(float initRange = 0.3f) => new()
    {
        ImageSize = 6, PatchSize = 3, NumChannels = 2, HiddenSize = 8, NumHiddenLayers = 2, NumAttentionHeads = 2,
        IntermediateSize = 12, InitializerRange = initRange, HiddenDropoutProb = 0.1f, AttentionProbsDropoutProb = 0.1f,
    };

    internal static VitBatch RandomBatch(System.Random rng, VitConfig cfg, int batch, int labels, int masked, bool givenTargets = false)
    {
        var b = new VitBatch(cfg, batch);
        TestUtil.RandomFloats(rng, b.Patches.Length).CopyTo(b.Patches, 0);
        if (labels > 0) b.Labels = Enumerable.Range(0, batch).Select(_ => rng.Next(labels)).ToArray();
        if (masked > 0)
        {
            b.PatchMask = new byte[batch * cfg.NumPatches];
            foreach (int i in Enumerable.Range(0, b.PatchMask.Length).OrderBy(_ => rng.Next()).Take(masked)) b.PatchMask[i] = 1;
            if (givenTargets) b.MaskedTargets = TestUtil.RandomFloats(rng, masked * cfg.PatchDim);
        }
        return b;
    }

    private static double[] AsDouble(float[] a) => a.Select(f => (double)f).ToArray();

    [Test]
    public void PreLnLayerMatchesFloat64Reference_ForwardAndBackward()
    {
        int seed = TestUtil.FreshSeed();
        var rng = new System.Random(seed);
        var be = new CpuBackend();
        var cfg = TinyConfig() with { NumHiddenLayers = 1, LayerNormEps = 1e-6f };
        var layout = new VitParameterLayout(cfg, new VitHeads());
        using var p = new VitParameters(be, layout);
        var values = TestUtil.RandomNormals(rng, (int)layout.TotalLength, 0.5f);
        be.CopyFromHost<float>(values, p.Values);
        int batch = 2, seq = 7, c = cfg.HiddenSize, rows = batch * seq;
        using var arena = new TensorArena(be);
        var shape = new TransformerLayerShape(batch, seq, c, cfg.NumAttentionHeads, cfg.IntermediateSize, cfg.LayerNormEps, AttentionDropout: false);
        var x = TestUtil.RandomNormals(rng, rows * c);
        var input = arena.F32(rows, c); be.CopyFromHost<float>(x, input);
        var output = arena.F32(rows, c);
        var layer = new TransformerEncoderLayer(be, p.LayerWeights(0), LayerNormPlacement.Pre, 0, shape, input, output,
                                                new TransformerLayerScratch(arena, shape), arena);
        layer.Forward(arena.F32(batch, seq), DropoutPlan.Off);
        var vd = AsDouble(values);
        var expected = VitReference.PreLnLayer(vd, layout, 0, AsDouble(x), batch, seq);
        TestUtil.AssertClose(TestUtil.Download(output), expected, 1e-4, 1e-4, "pre-LN layer output");

        // Backward of L = sum(out * r) against float64 central differences of the reference.
        var r = TestUtil.RandomNormals(rng, rows * c);
        var dOut = arena.F32(rows, c); be.CopyFromHost<float>(r, dOut);
        var dIn = arena.F32(rows, c);
        p.ZeroGrads();
        layer.Backward(dOut, dIn, DropoutPlan.Off);
        double L(double[] vals, double[] xin) => VitReference.PreLnLayer(vals, layout, 0, xin, batch, seq).Select((o, i) => o * r[i]).Sum();
        const double h = 1e-6;
        var xd = AsDouble(x);
        var fdInput = new double[rows * c];
        for (int i = 0; i < fdInput.Length; i++)
        {
            var plus = (double[])xd.Clone(); plus[i] += h;
            var minus = (double[])xd.Clone(); minus[i] -= h;
            fdInput[i] = (L(vd, plus) - L(vd, minus)) / (2 * h);
        }
        TestUtil.AssertClose(TestUtil.Download(dIn), fdInput, 2e-3, 2e-3, "pre-LN layer input gradient");
        var grads = TestUtil.Download(p.Grads);
        foreach (var slot in layout.Slots.Where(s => s.Name.StartsWith("vit.encoder.", StringComparison.Ordinal)))
        {
            var an = new List<float>(); var fd = new List<double>();
            for (int s = 0; s < 4; s++)
            {
                long idx = slot.Offset + rng.NextInt64(slot.Length);
                var plus = (double[])vd.Clone(); plus[idx] += h;
                var minus = (double[])vd.Clone(); minus[idx] -= h;
                fd.Add((L(plus, xd) - L(minus, xd)) / (2 * h));
                an.Add(grads[idx]);
            }
            TestUtil.AssertClose(an.ToArray(), fd.ToArray(), 2e-3, 2e-3, slot.Name + " gradient");
        }
    }

    [TestCase(3, false, 0, TestName = "ForwardMatchesReference_Classifier")]
    [TestCase(0, true, 3, TestName = "ForwardMatchesReference_MaskedPatches")]
    [TestCase(4, true, 2, TestName = "ForwardMatchesReference_BothHeads")]
    public void ForwardMatchesFloat64Reference(int labels, bool ssl, int masked)
    {
        int seed = TestUtil.FreshSeed();
        var rng = new System.Random(seed);
        var be = new CpuBackend();
        var cfg = TinyConfig();
        var layout = new VitParameterLayout(cfg, new VitHeads(labels, ssl));
        using var p = new VitParameters(be, layout);
        p.Initialize((ulong)seed);
        using var model = new VitModel(p, batch: 3);
        var batch = RandomBatch(rng, cfg, 3, labels, masked);
        double loss = model.Forward(batch, DropoutPlan.Off);
        var (final, logits, predictions) = VitReference.Model(AsDouble(TestUtil.Download(p.Values)), layout, batch);
        TestUtil.AssertClose(TestUtil.Download(model.LastHidden), final, 1e-4, 1e-4, "final hidden states");
        double expectedLoss = 0;
        if (logits != null)
        {
            TestUtil.AssertClose(TestUtil.Download(model.Logits), logits, 1e-4, 1e-4, "logits");
            var predicted = model.PredictedLabels();
            for (int b = 0; b < 3; b++)
            {
                var row = logits.Skip(b * labels).Take(labels).ToArray();
                Assert.That(row[predicted[b]], Is.EqualTo(row.Max()).Within(1e-4), $"image {b}'s predicted label");
            }
            for (int b = 0; b < 3; b++)
            {
                var row = logits.Skip(b * labels).Take(labels).ToArray();
                double max = row.Max();
                expectedLoss += (Math.Log(row.Sum(z => Math.Exp(z - max))) + max - row[batch.Labels![b]]) / 3;
            }
        }
        if (predictions != null)
        {
            Assert.That(model.MaskedCount, Is.EqualTo(masked));
            TestUtil.AssertClose(TestUtil.Download(model.ReconstructedPatches), predictions, 1e-4, 1e-4, "reconstructed patches");
            var targets = Enumerable.Range(0, batch.PatchMask!.Length).Where(i => batch.PatchMask[i] != 0)
                .SelectMany(i => batch.Patches.Skip(i * cfg.PatchDim).Take(cfg.PatchDim)).ToArray();
            expectedLoss += predictions.Select((v, i) => (v - targets[i]) * (v - targets[i])).Sum() / predictions.Length;
        }
        Assert.That(loss, Is.EqualTo(expectedLoss).Within(1e-4 * Math.Max(1, expectedLoss)));
    }

    /// <summary>
    /// Whole-model gradient check as BERT's: every parameter tensor, a few random elements each,
    /// against float32 central differences of the model's loss (std 0.3 init so gradients stand far
    /// above float32 noise).
    /// </summary>
    [TestCase(3, false, 0, false, false, TestName = "GradientCheck_Classifier")]
    [TestCase(3, false, 0, false, true, TestName = "GradientCheck_ClassifierWithIgnoredImage")]
    [TestCase(0, true, 3, false, false, TestName = "GradientCheck_MaskedPatches")]
    [TestCase(0, true, 4, true, false, TestName = "GradientCheck_MaskedPatchesGivenTargets")]
    [TestCase(4, true, 2, false, false, TestName = "GradientCheck_BothHeads")]
    public void GradientMatchesFiniteDifferences(int labels, bool ssl, int masked, bool givenTargets, bool ignoredImage)
    {
        int seed = TestUtil.FreshSeed();
        var rng = new System.Random(seed);
        var be = new CpuBackend();
        var cfg = TinyConfig();
        using var p = new VitParameters(be, new VitParameterLayout(cfg, new VitHeads(labels, ssl)));
        p.Initialize((ulong)seed);
        using var model = new VitModel(p, batch: 2);
        var batch = RandomBatch(rng, cfg, 2, labels, masked, givenTargets);
        if (ignoredImage) batch.Labels![1] = VitBatch.IgnoreLabel;

        p.ZeroGrads();
        model.Forward(batch, DropoutPlan.Off);
        model.Backward();
        var grads = TestUtil.Download(p.Grads);
        var values = TestUtil.Download(p.Values);
        foreach (var head in new[] { "classifier.weight", "decoder.0.weight", VitParameterLayout.MaskToken, VitParameterLayout.ClsToken })
            if (p.Layout.Contains(head))
            {
                var slot = p.Layout[head];
                Assert.That(grads.AsSpan((int)slot.Offset, (int)slot.Length).ToArray().Any(g => g != 0), Is.True, $"{head} got no gradient");
            }

        const float eps = 1e-2f;
        double Loss(long index, float delta)
        {
            var v = (float[])values.Clone();
            v[index] += delta;
            be.CopyFromHost<float>(v, p.Values);
            return model.Forward(batch, DropoutPlan.Off);
        }
        var failures = new List<string>();
        foreach (var slot in p.Layout.Slots)
        {
            int samples = (int)Math.Min(6, slot.Length);
            var an = new double[samples]; var fd = new double[samples];
            for (int s = 0; s < samples; s++)
            {
                long idx = slot.Offset + rng.NextInt64(slot.Length);
                an[s] = grads[idx];
                // Richardson extrapolation of two central differences cancels their O(eps^2) error, which
                // the large-std tiny model's curvature (LayerNorm of a near-constant [CLS] row) can make
                // exceed the tolerance on some fresh seeds.
                double wide = (Loss(idx, eps) - Loss(idx, -eps)) / (2 * eps);
                double narrow = (Loss(idx, eps / 2) - Loss(idx, -eps / 2)) / eps;
                fd[s] = (4 * narrow - wide) / 3;
            }
            double num = 0, den = 0;
            for (int s = 0; s < samples; s++) { num += (an[s] - fd[s]) * (an[s] - fd[s]); den += fd[s] * fd[s]; }
            // Finite differences of a float32 loss carry ~1e-5 of noise per element (ulp(loss) / eps):
            // an absolute allowance keeps tensors whose true gradient is zero (the key bias:
            // softmax ignores a per-query constant) from failing on noise alone.
            double rel = Math.Sqrt(num) / Math.Max(Math.Sqrt(den), 1e-3);
            if (Math.Sqrt(num) > 3e-2 * Math.Sqrt(den) + 3e-4) failures.Add($"{slot.Name}: relative error {rel:g3} (analytic {string.Join(", ", an.Select(a => a.ToString("g3")))}; numeric {string.Join(", ", fd.Select(a => a.ToString("g3")))})");
        }
        be.CopyFromHost<float>(values, p.Values);
        Assert.That(failures, Is.Empty, string.Join("\n", failures));
    }

    [Test]
    public void MaskedPatchPixelsNeverReachTheEncoder()
    {
        int seed = TestUtil.FreshSeed();
        var rng = new System.Random(seed);
        var be = new CpuBackend();
        var cfg = TinyConfig(0.02f);
        using var p = new VitParameters(be, new VitParameterLayout(cfg, VitHeads.MaskedImageModeling));
        p.Initialize((ulong)seed);
        using var model = new VitModel(p, batch: 2);
        var batch = RandomBatch(rng, cfg, 2, 0, masked: 3, givenTargets: true);
        model.Forward(batch, DropoutPlan.Off);
        var first = TestUtil.Download(model.LastHidden);
        for (int i = 0; i < batch.PatchMask!.Length; i++)
            if (batch.PatchMask[i] != 0)
                for (int j = 0; j < cfg.PatchDim; j++) batch.Patches[i * cfg.PatchDim + j] = (float)rng.NextDouble() * 10;
        model.Forward(batch, DropoutPlan.Off);
        var second = TestUtil.Download(model.LastHidden);
        Assert.That(second.Select(BitConverter.SingleToInt32Bits), Is.EqualTo(first.Select(BitConverter.SingleToInt32Bits)));
        // An unmasked patch does reach it.
        int visible = Array.FindIndex(batch.PatchMask, m => m == 0);
        batch.Patches[visible * cfg.PatchDim] += 1f;
        model.Forward(batch, DropoutPlan.Off);
        Assert.That(TestUtil.Download(model.LastHidden), Is.Not.EqualTo(first));
    }

    [Test]
    public void DropoutIsDeterministicPerStep_AndItsGradientMatchesFiniteDifferences()
    {
        int seed = TestUtil.FreshSeed();
        var rng = new System.Random(seed);
        var be = new CpuBackend();
        var cfg = TinyConfig();
        using var p = new VitParameters(be, new VitParameterLayout(cfg, new VitHeads(3, true)));
        p.Initialize((ulong)seed);
        using var model = new VitModel(p, batch: 2);
        var batch = RandomBatch(rng, cfg, 2, 3, masked: 3);
        double a = model.Forward(batch, DropoutPlan.Off), b = model.Forward(batch, DropoutPlan.Off);
        Assert.That(BitConverter.DoubleToInt64Bits(a), Is.EqualTo(BitConverter.DoubleToInt64Bits(b)));
        var plan = new DropoutPlan(true, (ulong)seed, 3, 0.2f, 0.2f);
        double c1 = model.Forward(batch, plan), c2 = model.Forward(batch, plan);
        Assert.That(c1, Is.EqualTo(c2), "same step, same dropout masks");
        Assert.That(model.Forward(batch, plan with { Step = 4 }), Is.Not.EqualTo(c1), "another step draws other masks");
        Assert.That(c1, Is.Not.EqualTo(a), "dropout changes the loss");

        p.ZeroGrads();
        model.Forward(batch, plan);
        model.Backward();
        var grads = TestUtil.Download(p.Grads);
        var values = TestUtil.Download(p.Values);
        foreach (string name in new[] { "vit.encoder.layer.0.attention.attention.query.weight", VitParameterLayout.PatchProjection + ".weight" })
        {
            var slot = p.Layout[name];
            double num = 0, den = 0;
            for (int s = 0; s < 6; s++)
            {
                long idx = slot.Offset + rng.NextInt64(slot.Length);
                double L(float delta) { var v = (float[])values.Clone(); v[idx] += delta; be.CopyFromHost<float>(v, p.Values); return model.Forward(batch, plan); }
                double fd = (L(1e-2f) - L(-1e-2f)) / 2e-2;
                num += (fd - grads[idx]) * (fd - grads[idx]); den += fd * fd;
            }
            Assert.That(Math.Sqrt(num) / Math.Max(Math.Sqrt(den), 1e-3), Is.LessThan(3e-2), name);
        }
        be.CopyFromHost<float>(values, p.Values);
    }

    [Test]
    public void BadBatchesGiveClearErrors()
    {
        var be = new CpuBackend();
        var cfg = TinyConfig();
        var rng = new System.Random(1);
        using var cls = new VitParameters(be, new VitParameterLayout(cfg, VitHeads.Classification(3)));
        using var model = new VitModel(cls, batch: 2);
        var masked = RandomBatch(rng, cfg, 2, 3, masked: 2);
        Assert.That(Assert.Throws<ArgumentException>(() => model.Forward(masked, DropoutPlan.Off))!.Message, Does.Contain("masked-patch head"));
        var badLabel = RandomBatch(rng, cfg, 2, 3, masked: 0);
        badLabel.Labels![0] = 3;
        Assert.That(Assert.Throws<ArgumentException>(() => model.Forward(badLabel, DropoutPlan.Off))!.Message, Does.Contain("label 3"));
        Assert.That(Assert.Throws<ArgumentException>(() => model.Forward(RandomBatch(rng, cfg, 3, 3, 0), DropoutPlan.Off))!.Message, Does.Contain("built for 2"));
        using var ssl = new VitParameters(be, new VitParameterLayout(cfg, VitHeads.MaskedImageModeling));
        using var sslModel = new VitModel(ssl, batch: 2);
        var wrongTargets = RandomBatch(rng, cfg, 2, 0, masked: 2, givenTargets: true);
        wrongTargets.MaskedTargets = new float[5];
        Assert.That(Assert.Throws<ArgumentException>(() => sslModel.Forward(wrongTargets, DropoutPlan.Off))!.Message, Does.Contain("MaskedTargets"));
        var wrongShape = new VitBatch(2, cfg.NumPatches, cfg.PatchDim + 1);
        Assert.That(Assert.Throws<ArgumentException>(() => sslModel.Forward(wrongShape, DropoutPlan.Off))!.Message, Does.Contain("patches of"));
    }
}
