using NativeSparsity.Engine.Backends.Cpu;
using NativeSparsity.Models.Bert;
using NativeSparsity.Tests.Engine;
using NUnit.Framework;

namespace NativeSparsity.Tests.Models;

public class BertModelTests
{
    [Test]
    public void BertBaseParameterCountsMatchHuggingFace()
    {
        // BertModel (embeddings + encoder + pooler) of bert-base-uncased: 109,482,240 parameters;
        // the paper's prunable set (six matrices per layer): 84,934,656.
        var layout = new BertParameterLayout(BertConfig.FromPreset("base"), new BertHeads(MaskedLm: false, Pooler: true));
        Assert.That(layout.ParameterCount, Is.EqualTo(109_482_240));
        Assert.That(layout.PrunableLength, Is.EqualTo(84_934_656));
        Assert.That(layout.PrunableMatrices.Count(), Is.EqualTo(72));
    }

    [Test]
    public void LayoutKeepsPrunableSpanDenseAndQkvAdjacent()
    {
        var cfg = new BertConfig { VocabSize = 37, HiddenSize = 12, NumAttentionHeads = 3, NumHiddenLayers = 2, IntermediateSize = 20, MaxPositionEmbeddings = 9 };
        var layout = new BertParameterLayout(cfg, BertHeads.PreTraining);
        long expected = 0;
        foreach (var m in layout.PrunableMatrices)
        {
            Assert.That(m.Offset, Is.EqualTo(expected), m.Name);
            expected += (long)m.Rows * m.Cols;
        }
        Assert.That(expected, Is.EqualTo(layout.PrunableLength));
        for (int i = 0; i < 2; i++)
        {
            string p = BertParameterLayout.LayerPrefix(i);
            Assert.That(layout[p + "attention.self.key.bias"].Offset, Is.EqualTo(layout[p + "attention.self.query.bias"].Offset + 12));
            Assert.That(layout[p + "attention.self.value.bias"].Offset, Is.EqualTo(layout[p + "attention.self.query.bias"].Offset + 24));
        }
        // No two parameters overlap.
        var slots = layout.Slots.OrderBy(s => s.Offset).ToList();
        for (int i = 1; i < slots.Count; i++)
            Assert.That(slots[i].Offset, Is.GreaterThanOrEqualTo(slots[i - 1].Offset + slots[i - 1].Length), slots[i].Name);
    }

    internal static BertConfig TinyConfig(float initRange = 0.3f) => new()
    {
        VocabSize = 23, HiddenSize = 8, NumAttentionHeads = 2, NumHiddenLayers = 2, IntermediateSize = 12,
        MaxPositionEmbeddings = 8, TypeVocabSize = 2, InitializerRange = initRange,
        HiddenDropoutProb = 0.1f, AttentionProbsDropoutProb = 0.1f,
    };

    internal static BertBatch RandomBatch(System.Random rng, BertConfig cfg, int batch, int seq, int padLast, int masked, int labels)
    {
        var b = new BertBatch(batch, seq);
        for (int i = 0; i < batch * seq; i++)
        {
            b.InputIds[i] = rng.Next(cfg.VocabSize);
            b.TokenTypeIds[i] = (i % seq) >= seq / 2 ? 1 : 0;
            bool pad = i / seq == batch - 1 && i % seq >= seq - padLast;
            b.AttentionMask[i] = pad ? 0 : 1;
        }
        var positions = Enumerable.Range(0, batch * seq).Where(i => b.AttentionMask[i] == 1).OrderBy(_ => rng.Next()).Take(masked).ToArray();
        b.MlmPositions = positions;
        b.MlmLabels = positions.Select(_ => rng.Next(cfg.VocabSize)).ToArray();
        if (labels > 1) b.Labels = Enumerable.Range(0, batch).Select(_ => rng.Next(labels)).ToArray();
        if (labels == 1) b.RegressionTargets = Enumerable.Range(0, batch).Select(_ => (float)rng.NextDouble() * 2 - 1).ToArray();
        return b;
    }

    /// <summary>
    /// Whole-model gradient check: every parameter tensor, a few random elements each, against
    /// float32 central differences of the loss. The tiny model is initialised with a large std so
    /// gradients are far above float32 noise (loss ~3, eps 1e-2: rounding error ~1e-4 per element).
    /// </summary>
    [TestCase(0, TestName = "GradientCheck_MaskedLm")]
    [TestCase(3, TestName = "GradientCheck_Classifier")]
    [TestCase(1, TestName = "GradientCheck_Regression")]
    [TestCase(3, true, TestName = "GradientCheck_ClassifierWithPaddingRow")]
    [TestCase(1, true, TestName = "GradientCheck_RegressionWithPaddingRow")]
    [TestCase(-2, TestName = "GradientCheck_MaskedLmAndNextSentence")]
    public void GradientMatchesFiniteDifferences(int labels, bool paddingRow = false)
    {
        int seed = TestUtil.FreshSeed();
        var rng = new System.Random(seed);
        var be = new CpuBackend();
        var cfg = TinyConfig();
        var heads = labels switch
        {
            0 => BertHeads.PreTraining,
            -2 => BertHeads.PreTraining with { NextSentence = true },
            _ => BertHeads.SequenceClassification(labels),
        };
        using var p = new BertParameters(be, new BertParameterLayout(cfg, heads));
        p.Initialize((ulong)seed);
        using var model = new BertModel(p, batch: 2, seq: 6);
        var batch = RandomBatch(rng, cfg, 2, 6, padLast: 2, masked: 5, Math.Max(labels, 0));
        if (labels == -2) batch.NextSentenceLabels = new[] { rng.Next(2), rng.Next(2) };
        if (paddingRow && batch.Labels != null) batch.Labels[1] = -100;
        if (paddingRow && batch.RegressionTargets != null) batch.RegressionTargets[1] = float.NaN;

        p.ZeroGrads();
        model.Forward(batch, DropoutPlan.Off);
        model.Backward();
        var grads = TestUtil.Download(p.Grads);
        var values = TestUtil.Download(p.Values);
        // Each head's own weights must receive a gradient, or the check below would pass on zeros.
        foreach (var head in new[] { "cls.predictions.transform.dense.weight", "cls.seq_relationship.weight", "classifier.weight", "bert.pooler.dense.weight" })
            if (p.Layout.Contains(head) && (head != "bert.pooler.dense.weight" || labels != 0))
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
            // Position rows beyond the sequence and unused token rows get no gradient; sample where it flows.
            int samples = (int)Math.Min(6, slot.Length);
            var an = new double[samples]; var fd = new double[samples];
            for (int s = 0; s < samples; s++)
            {
                long idx = slot.Offset + (slot.Name.Contains("position_embeddings") ? rng.Next(6 * cfg.HiddenSize) : rng.NextInt64(slot.Length));
                an[s] = grads[idx];
                fd[s] = (Loss(idx, eps) - Loss(idx, -eps)) / (2 * eps);
            }
            double num = 0, den = 0;
            for (int s = 0; s < samples; s++) { num += (an[s] - fd[s]) * (an[s] - fd[s]); den += fd[s] * fd[s]; }
            double rel = Math.Sqrt(num) / Math.Max(Math.Sqrt(den), 1e-3);
            // Central differences of a float32 loss carry ~1e-5 of noise per element, so a tensor whose
            // true gradient is ~0 (the key bias: softmax ignores a per-query constant) gets an absolute allowance.
            if (Math.Sqrt(num) > 3e-2 * Math.Sqrt(den) + 3e-4) failures.Add($"{slot.Name}: relative error {rel:g3} (analytic {string.Join(", ", an.Select(a => a.ToString("g3")))}; numeric {string.Join(", ", fd.Select(a => a.ToString("g3")))})");
        }
        be.CopyFromHost<float>(values, p.Values);
        Assert.That(failures, Is.Empty, string.Join("\n", failures));
    }

    [Test]
    public void PaddingDoesNotChangeOutputsAtRealPositions()
    {
        int seed = TestUtil.FreshSeed();
        var rng = new System.Random(seed);
        var be = new CpuBackend();
        var cfg = TinyConfig(0.02f);
        using var p = new BertParameters(be, new BertParameterLayout(cfg, BertHeads.PreTraining));
        p.Initialize((ulong)seed);
        using var model = new BertModel(p, batch: 2, seq: 7);
        var batch = RandomBatch(rng, cfg, 2, 7, padLast: 3, masked: 0, labels: 0);
        model.Forward(batch, DropoutPlan.Off);
        var first = TestUtil.Download(model.LastHidden);
        for (int t = 4; t < 7; t++) batch.InputIds[7 + t] = rng.Next(cfg.VocabSize);   // change only padding tokens
        model.Forward(batch, DropoutPlan.Off);
        var second = TestUtil.Download(model.LastHidden);
        int c = cfg.HiddenSize;
        for (int row = 0; row < 14; row++)
        {
            if (batch.AttentionMask[row] == 0) continue;
            for (int j = 0; j < c; j++)
                Assert.That(second[row * c + j], Is.EqualTo(first[row * c + j]).Within(1e-6), $"row {row}");
        }
    }

    [Test]
    public void WithoutDropoutRepeatedForwardIsIdentical_WithDropoutStepChangesIt()
    {
        int seed = TestUtil.FreshSeed();
        var rng = new System.Random(seed);
        var be = new CpuBackend();
        var cfg = TinyConfig(0.02f);
        using var p = new BertParameters(be, new BertParameterLayout(cfg, BertHeads.PreTraining));
        p.Initialize((ulong)seed);
        using var model = new BertModel(p, batch: 3, seq: 5);
        var batch = RandomBatch(rng, cfg, 3, 5, padLast: 1, masked: 4, labels: 0);
        double a = model.Forward(batch, DropoutPlan.Off), b = model.Forward(batch, DropoutPlan.Off);
        Assert.That(BitConverter.DoubleToInt64Bits(a), Is.EqualTo(BitConverter.DoubleToInt64Bits(b)));
        var train = new DropoutPlan(true, 5, 1, 0.1f, 0.1f);
        double c1 = model.Forward(batch, train), c2 = model.Forward(batch, train);
        Assert.That(c1, Is.EqualTo(c2), "same step, same dropout masks");
        double d = model.Forward(batch, train with { Step = 2 });
        Assert.That(d, Is.Not.EqualTo(c1), "another step draws other masks");
        Assert.That(c1, Is.Not.EqualTo(a), "dropout changes the loss");
    }

    [Test]
    public void GradientWithDropoutMatchesFiniteDifferencesOfTheSameMasks()
    {
        int seed = TestUtil.FreshSeed();
        var rng = new System.Random(seed);
        var be = new CpuBackend();
        var cfg = TinyConfig();
        using var p = new BertParameters(be, new BertParameterLayout(cfg, BertHeads.PreTraining));
        p.Initialize((ulong)seed);
        using var model = new BertModel(p, batch: 2, seq: 5);
        var batch = RandomBatch(rng, cfg, 2, 5, padLast: 1, masked: 4, labels: 0);
        var plan = new DropoutPlan(true, (ulong)seed, 3, 0.2f, 0.2f);
        p.ZeroGrads();
        model.Forward(batch, plan);
        model.Backward();
        var grads = TestUtil.Download(p.Grads);
        var values = TestUtil.Download(p.Values);
        // The first layer's query matrix: its gradient passes through every dropout site after it.
        var slot = p.Layout["bert.encoder.layer.0.attention.self.query.weight"];
        double num = 0, den = 0;
        for (int s = 0; s < 8; s++)
        {
            long idx = slot.Offset + rng.Next((int)slot.Length);
            double L(float delta) { var v = (float[])values.Clone(); v[idx] += delta; be.CopyFromHost<float>(v, p.Values); return model.Forward(batch, plan); }
            double fd = (L(1e-2f) - L(-1e-2f)) / 2e-2;
            num += (fd - grads[idx]) * (fd - grads[idx]); den += fd * fd;
        }
        Assert.That(Math.Sqrt(num) / Math.Max(Math.Sqrt(den), 1e-3), Is.LessThan(3e-2));
    }
}

public class MlmMaskingTests
{
    [Test]
    public void SelectsAboutFifteenPercentWithEightyTenTenSplit()
    {
        int seed = TestUtil.FreshSeed();
        var rng = new System.Random(seed);
        const int batchSize = 64, seq = 128, vocab = 1000, first = 5, mask = 4;
        var batch = new BertBatch(batchSize, seq);
        for (int i = 0; i < batch.InputIds.Length; i++)
        {
            batch.InputIds[i] = i % seq == 0 ? 2 : first + rng.Next(vocab - first);   // a special at each sequence start
            batch.AttentionMask[i] = 1;
        }
        var original = (int[])batch.InputIds.Clone();
        new MlmMasking(mask, first, vocab).Apply(batch, (ulong)seed, step: 7);
        int n = batch.MlmPositions.Length, ordinary = batchSize * (seq - 1);
        Assert.That(n / (double)ordinary, Is.EqualTo(0.15).Within(0.02));
        int masked = 0, unchanged = 0, randomised = 0;
        for (int j = 0; j < n; j++)
        {
            int pos = batch.MlmPositions[j];
            Assert.That(pos % seq, Is.Not.EqualTo(0), "specials are never selected");
            Assert.That(batch.MlmLabels[j], Is.EqualTo(original[pos]));
            if (batch.InputIds[pos] == mask) masked++;
            else if (batch.InputIds[pos] == original[pos]) unchanged++;
            else { randomised++; Assert.That(batch.InputIds[pos], Is.InRange(first, vocab - 1)); }
        }
        Assert.That(masked / (double)n, Is.EqualTo(0.8).Within(0.04));
        Assert.That(unchanged / (double)n, Is.EqualTo(0.1).Within(0.03));
        Assert.That(randomised / (double)n, Is.EqualTo(0.1).Within(0.03));
        for (int i = 0; i < original.Length; i++)
            if (!batch.MlmPositions.Contains(i)) Assert.That(batch.InputIds[i], Is.EqualTo(original[i]));
    }

    [Test]
    public void SameSeedAndStepGiveSameMasks_PaddingNeverSelected()
    {
        var a = new BertBatch(4, 32); var b = new BertBatch(4, 32);
        for (int i = 0; i < a.InputIds.Length; i++)
        {
            a.InputIds[i] = b.InputIds[i] = 10 + i % 50;
            a.AttentionMask[i] = b.AttentionMask[i] = i % 32 < 20 ? 1 : 0;
        }
        var m = new MlmMasking(4, 5, 100);
        m.Apply(a, 3, 11); m.Apply(b, 3, 11);
        Assert.That(a.MlmPositions, Is.EqualTo(b.MlmPositions));
        Assert.That(a.InputIds, Is.EqualTo(b.InputIds));
        Assert.That(a.MlmPositions.All(p => p % 32 < 20), Is.True);
        var c = new BertBatch(4, 32);
        Array.Copy(b.InputIds, c.InputIds, 0);
        for (int i = 0; i < c.InputIds.Length; i++) { c.InputIds[i] = 10 + i % 50; c.AttentionMask[i] = i % 32 < 20 ? 1 : 0; }
        m.Apply(c, 3, 12);
        Assert.That(c.MlmPositions, Is.Not.EqualTo(a.MlmPositions));
    }
}

public class BertCheckpointTests
{
    [Test]
    public void SaveLoadRoundTripsBitExactly()
    {
        int seed = TestUtil.FreshSeed();
        var be = new CpuBackend();
        var cfg = BertModelTests.TinyConfig();
        using var p = new BertParameters(be, new BertParameterLayout(cfg, BertHeads.PreTraining));
        p.Initialize((ulong)seed);
        string dir = Path.Combine(Path.GetTempPath(), "nsparse-ckpt-" + Guid.NewGuid().ToString("N"));
        try
        {
            BertCheckpoint.Save(dir, p);
            Assert.That(File.Exists(Path.Combine(dir, "model.safetensors")) && File.Exists(Path.Combine(dir, "config.json")));
            var (q, report) = BertCheckpoint.Load(dir, be, BertHeads.PreTraining, initSeed: 999);
            using (q)
            {
                Assert.That(report.Missing, Is.Empty);
                Assert.That(report.Unexpected, Is.Empty);
                Assert.That(q.Config, Is.EqualTo(cfg));
                var a = TestUtil.Download(p.Values); var b = TestUtil.Download(q.Values);
                Assert.That(b.Select(BitConverter.SingleToInt32Bits), Is.EqualTo(a.Select(BitConverter.SingleToInt32Bits)));
            }
            // A classification model loads the encoder and initialises the new head.
            var (c, rep2) = BertCheckpoint.Load(dir, be, BertHeads.SequenceClassification(3));
            using (c)
            {
                Assert.That(rep2.Missing, Is.EquivalentTo(new[] { "classifier.weight", "classifier.bias" }));
                Assert.That(rep2.Unexpected, Has.Some.StartsWith("cls.predictions"));
            }
        }
        finally { if (Directory.Exists(dir)) Directory.Delete(dir, true); }
    }

    [Test]
    public void WrongShapeInFileNamesTheTensor()
    {
        var be = new CpuBackend();
        var cfg = BertModelTests.TinyConfig();
        using var p = new BertParameters(be, new BertParameterLayout(cfg, BertHeads.PreTraining));
        string dir = Path.Combine(Path.GetTempPath(), "nsparse-ckpt-" + Guid.NewGuid().ToString("N"));
        try
        {
            BertCheckpoint.Save(dir, p);
            // Claim a bigger hidden size in config.json: every matrix then has the wrong shape.
            File.WriteAllText(Path.Combine(dir, "config.json"), (cfg with { IntermediateSize = 16 }).ToJsonString());
            var ex = Assert.Throws<InvalidDataException>(() => BertCheckpoint.Load(dir, be, BertHeads.PreTraining));
            Assert.That(ex!.Message, Does.Contain("intermediate.dense.weight").And.Contain("model.safetensors"));
        }
        finally { if (Directory.Exists(dir)) Directory.Delete(dir, true); }
    }

    [TestCase("encoder.layer.0.attention.output.LayerNorm.gamma", "bert.encoder.layer.0.attention.output.LayerNorm.weight")]
    [TestCase("bert.embeddings.LayerNorm.beta", "bert.embeddings.LayerNorm.bias")]
    [TestCase("cls.predictions.bias", "cls.predictions.bias")]
    public void HuggingFaceNameVariantsMapToOurs(string hf, string ours) =>
        Assert.That(BertCheckpoint.Canonical(hf), Is.EqualTo(ours));
}
