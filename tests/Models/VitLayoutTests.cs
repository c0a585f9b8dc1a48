using NativeSparsity.Engine.Backends.Cpu;
using NativeSparsity.Models.Bert;
using NativeSparsity.Models.Vit;
using NativeSparsity.Tests.Engine;
using NUnit.Framework;

namespace NativeSparsity.Tests.Models;

public class VitLayoutTests
{
    [Test]
    public void VitBase16ParameterCountsMatchTheKnownFigures()
    {
        // ViT-B/16 image classifier at 224 px with 1000 labels (HF ViTForImageClassification,
        // timm vit_base_patch16_224): 86,567,656 parameters; six matrices per layer: 84,934,656.
        var cfg = VitConfig.FromPreset("base");
        var layout = new VitParameterLayout(cfg, VitHeads.Classification(1000));
        Assert.That(layout.ParameterCount, Is.EqualTo(86_567_656));
        Assert.That(VitParameterLayout.ExpectedParameterCount(cfg, VitHeads.Classification(1000)), Is.EqualTo(86_567_656));
        Assert.That(layout.PrunableLength, Is.EqualTo(84_934_656));
        Assert.That(layout.PrunableMatrices.Count(), Is.EqualTo(72));
    }

    [TestCase("tiny", 10, false)]
    [TestCase("tiny", 0, true)]
    [TestCase("small", 10, true)]
    public void PresetCountsFollowTheFormula(string preset, int labels, bool ssl)
    {
        var cfg = VitConfig.FromPreset(preset);
        var heads = new VitHeads(labels, ssl);
        var layout = new VitParameterLayout(cfg, heads);
        long c = cfg.HiddenSize, i = cfg.IntermediateSize;
        Assert.That(layout.ParameterCount, Is.EqualTo(VitParameterLayout.ExpectedParameterCount(cfg, heads)));
        Assert.That(layout.PrunableLength, Is.EqualTo(cfg.NumHiddenLayers * (4 * c * c + 2 * c * i)));
        if (preset == "tiny" && !ssl)
        {
            // 4 x (4*128² + 2*128*512 + 512 + 9*128) = 793,088; + 128*16 + 128 + 128 + 50*128 + 256 + 10*129 = 10,250
            Assert.That(layout.ParameterCount, Is.EqualTo(803_338));
            Assert.That((cfg.NumPatches, cfg.SeqLength, cfg.PatchDim, cfg.HeadDim), Is.EqualTo((49, 50, 16, 32)));
        }
    }

    [Test]
    public void PrunableSpanComesFirst_IsDense_AndHoldsSixMatricesPerLayer()
    {
        var cfg = VitModelTests.TinyConfig();
        var layout = new VitParameterLayout(cfg, new VitHeads(3, true));
        long expected = 0;
        var names = new List<string>();
        foreach (var m in layout.PrunableMatrices)
        {
            Assert.That(m.Offset, Is.EqualTo(expected), m.Name);
            expected += (long)m.Rows * m.Cols;
            names.Add(m.Name);
        }
        Assert.That(expected, Is.EqualTo(layout.PrunableLength));
        Assert.That(names, Has.Count.EqualTo(6 * cfg.NumHiddenLayers));
        Assert.That(names.Take(6), Is.EqualTo(new[]
        {
            "vit.encoder.layer.0.attention.attention.query.weight", "vit.encoder.layer.0.attention.attention.key.weight",
            "vit.encoder.layer.0.attention.attention.value.weight", "vit.encoder.layer.0.attention.output.dense.weight",
            "vit.encoder.layer.0.intermediate.dense.weight", "vit.encoder.layer.0.output.dense.weight",
        }));
        Assert.That(layout.Slots.Where(s => s.Group != ParameterGroup.Prunable).All(s => s.Offset >= layout.PrunableLength));
        Assert.That(layout.Slots.Where(s => s.Group == ParameterGroup.NotDecayed).All(s => s.Shape.Length == 1 && s.Offset >= layout.NotDecayedStart));
        Assert.That(layout.Slots.Where(s => s.Group == ParameterGroup.Decayed).Select(s => s.Name), Is.EquivalentTo(new[]
        {
            "vit.embeddings.patch_embeddings.projection.weight", "vit.embeddings.cls_token", "vit.embeddings.position_embeddings",
            "vit.embeddings.mask_token", "classifier.weight", "decoder.0.weight",
        }));
        Assert.That(layout["vit.embeddings.patch_embeddings.projection.weight"].Shape, Is.EqualTo(new[] { 8, 2, 3, 3 }));
        Assert.That(layout["vit.embeddings.position_embeddings"].Shape, Is.EqualTo(new[] { 1, 5, 8 }));
        Assert.That(layout["decoder.0.weight"].Shape, Is.EqualTo(new[] { 18, 8, 1, 1 }));
        for (int i = 0; i < cfg.NumHiddenLayers; i++)
        {
            string p = VitParameterLayout.LayerPrefix(i);
            long q = layout[p + "attention.attention.query.bias"].Offset;
            Assert.That(layout[p + "attention.attention.key.bias"].Offset, Is.EqualTo(q + 8));
            Assert.That(layout[p + "attention.attention.value.bias"].Offset, Is.EqualTo(q + 16));
            Assert.That(layout[p + "attention.attention.key.weight"].Offset, Is.EqualTo(layout[p + "attention.attention.query.weight"].Offset + 64));
        }
        var slots = layout.Slots.OrderBy(s => s.Offset).ToList();
        for (int i = 1; i < slots.Count; i++)
            Assert.That(slots[i].Offset, Is.GreaterThanOrEqualTo(slots[i - 1].Offset + slots[i - 1].Length), slots[i].Name);
        Assert.That(slots[^1].Offset + slots[^1].Length, Is.LessThanOrEqualTo(layout.TotalLength));
    }

    [Test]
    public void InitializationAndOptimizerSegmentsCoverTheRightSpans()
    {
        int seed = TestUtil.FreshSeed();
        var be = new CpuBackend();
        var cfg = VitModelTests.TinyConfig(0.02f);
        var layout = new VitParameterLayout(cfg, new VitHeads(3, true));
        using var p = new VitParameters(be, layout);
        p.Initialize((ulong)seed);
        var v = TestUtil.Download(p.Values);
        float[] Of(string name) { var s = layout[name]; return v.AsSpan((int)s.Offset, (int)s.Length).ToArray(); }
        Assert.That(Of("vit.layernorm.weight"), Is.All.EqualTo(1f));
        Assert.That(Of("vit.encoder.layer.1.layernorm_before.bias"), Is.All.EqualTo(0f));
        Assert.That(Of("decoder.0.bias"), Is.All.EqualTo(0f));
        var w = Of("vit.encoder.layer.0.intermediate.dense.weight").Concat(Of("vit.embeddings.position_embeddings")).ToArray();
        double std = Math.Sqrt(w.Select(x => (double)x * x).Average());
        Assert.That(std, Is.EqualTo(0.02).Within(0.006));
        Assert.That(Of("vit.embeddings.cls_token").Any(x => x != 0) && Of("vit.embeddings.mask_token").Any(x => x != 0));
        using var q = new VitParameters(be, layout);
        q.Initialize((ulong)seed);
        Assert.That(TestUtil.Download(q.Values), Is.EqualTo(v), "same seed, same model");

        var m = be.Allocate(NativeSparsity.Engine.Tensors.DType.F32, (int)layout.TotalLength);
        try
        {
            var segs = p.OptimizerSegments(m, m);
            Assert.That(segs.Select(s => s.Decay), Is.EqualTo(new[] { true, true, false }));
            Assert.That(segs.Select(s => (long)s.Param.Length), Is.EqualTo(new[] { layout.PrunableLength, layout.DecayedLength, layout.NotDecayedLength }));
            Assert.That(p.PrunableSet().Matrices.Count, Is.EqualTo(6 * cfg.NumHiddenLayers));
        }
        finally { m.Storage.Dispose(); }
    }

    [Test]
    public void ConfigValidatesAndRoundTripsThroughHuggingFaceJson()
    {
        var tiny = VitConfig.FromPreset("tiny");
        Assert.That((tiny.ImageSize, tiny.PatchSize, tiny.NumChannels, tiny.HiddenSize, tiny.NumHiddenLayers, tiny.NumAttentionHeads, tiny.IntermediateSize),
                    Is.EqualTo((28, 4, 1, 128, 4, 4, 512)));
        Assert.That(VitConfig.FromPreset("base", imageSize: 28, patchSize: 4, numChannels: 1).NumPatches, Is.EqualTo(49));
        Assert.That(VitConfig.FromJson(tiny.ToJsonString(), "x"), Is.EqualTo(tiny));
        Assert.That(Assert.Throws<ArgumentException>(() => VitConfig.FromPreset("huge"))!.Message, Does.Contain("tiny, small, base"));
        Assert.That(Assert.Throws<ArgumentException>(() => (tiny with { PatchSize = 5 }).Validate())!.Message, Does.Contain("patch_size 5"));
        Assert.That(Assert.Throws<ArgumentException>(() => (tiny with { NumAttentionHeads = 3 }).Validate())!.Message, Does.Contain("num_attention_heads 3"));
        Assert.That(Assert.Throws<ArgumentException>(() => (tiny with { HiddenDropoutProb = 1f }).Validate())!.Message, Does.Contain("hidden_dropout_prob"));
        var bad = tiny.ToJson(); bad["image_size"] = 30;
        Assert.That(Assert.Throws<InvalidDataException>(() => VitConfig.FromJson(bad.ToJsonString(), "cfg.json"))!.Message,
                    Does.Contain("cfg.json").And.Contain("image_size 30"));
        var gelu = tiny.ToJson(); gelu["hidden_act"] = "relu";
        Assert.That(Assert.Throws<InvalidDataException>(() => VitConfig.FromJson(gelu.ToJsonString(), "cfg.json"))!.Message, Does.Contain("relu"));
        // HF's own key names and defaults.
        var hf = VitConfig.FromJson("""{"model_type": "vit", "hidden_size": 192, "num_attention_heads": 3, "intermediate_size": 768, "image_size": 32, "patch_size": 4}""", "hf");
        Assert.That((hf.HiddenSize, hf.NumHiddenLayers, hf.NumChannels, hf.LayerNormEps, hf.HiddenDropoutProb), Is.EqualTo((192, 12, 3, 1e-12f, 0f)));
    }
}

public class VitCheckpointTests
{
    private static string TempFolder() => Path.Combine(Path.GetTempPath(), "nsparse-vit-" + Guid.NewGuid().ToString("N"));

    [Test]
    public void SaveLoadRoundTripsBitExactly_AndSslCheckpointLoadsIntoAClassifier()
    {
        int seed = TestUtil.FreshSeed();
        var be = new CpuBackend();
        var cfg = VitModelTests.TinyConfig();
        using var p = new VitParameters(be, new VitParameterLayout(cfg, VitHeads.MaskedImageModeling));
        p.Initialize((ulong)seed);
        string dir = TempFolder();
        try
        {
            VitCheckpoint.Save(dir, p);
            var (q, report) = VitCheckpoint.Load(dir, be, VitHeads.MaskedImageModeling, initSeed: 999);
            using (q)
            {
                Assert.That(report.Missing, Is.Empty);
                Assert.That(report.Unexpected, Is.Empty);
                Assert.That(q.Config, Is.EqualTo(cfg));
                var a = TestUtil.Download(p.Values); var b = TestUtil.Download(q.Values);
                Assert.That(b.Select(BitConverter.SingleToInt32Bits), Is.EqualTo(a.Select(BitConverter.SingleToInt32Bits)));
            }
            var (c, rep2) = VitCheckpoint.Load(dir, be, VitHeads.Classification(5), initSeed: 77);
            using (c)
            {
                Assert.That(rep2.Missing, Is.EquivalentTo(new[] { "classifier.weight", "classifier.bias" }));
                Assert.That(rep2.Unexpected, Is.EquivalentTo(new[] { "vit.embeddings.mask_token", "decoder.0.weight", "decoder.0.bias" }));
                // Backbone from the file, classifier as a fresh model from the seed would have it.
                using var fresh = new VitParameters(be, c.Layout);
                fresh.Initialize(77);
                foreach (var slot in c.Layout.Slots)
                {
                    var got = TestUtil.Download(c[slot.Name]);
                    var want = slot.Name.StartsWith("classifier", StringComparison.Ordinal) ? TestUtil.Download(fresh[slot.Name]) : TestUtil.Download(p[slot.Name]);
                    Assert.That(got, Is.EqualTo(want), slot.Name);
                }
                Assert.That(TestUtil.Download(c["classifier.weight"]).Any(x => x != 0));
            }
        }
        finally { if (Directory.Exists(dir)) Directory.Delete(dir, true); }
    }

    [Test]
    public void WrongShapeNamesTheTensor_MissingBackboneIsAnError()
    {
        var be = new CpuBackend();
        var cfg = VitModelTests.TinyConfig();
        using var p = new VitParameters(be, new VitParameterLayout(cfg, VitHeads.Classification(3)));
        string dir = TempFolder();
        try
        {
            VitCheckpoint.Save(dir, p);
            File.WriteAllText(Path.Combine(dir, VitCheckpoint.ConfigFile), (cfg with { IntermediateSize = 16 }).ToJsonString());
            var ex = Assert.Throws<InvalidDataException>(() => VitCheckpoint.Load(dir, be, VitHeads.Classification(3)));
            Assert.That(ex!.Message, Does.Contain("intermediate.dense.weight").And.Contain("model.safetensors"));
            File.WriteAllText(Path.Combine(dir, VitCheckpoint.ConfigFile), (cfg with { NumHiddenLayers = 3 }).ToJsonString());
            var missing = Assert.Throws<InvalidDataException>(() => VitCheckpoint.Load(dir, be, VitHeads.Classification(3)));
            Assert.That(missing!.Message, Does.Contain("vit.encoder.layer.2."));
            Assert.That(VitCheckpoint.ReadNumLabels(dir), Is.EqualTo(0), "config.json was overwritten without num_labels");
        }
        finally { if (Directory.Exists(dir)) Directory.Delete(dir, true); }
    }

    [TestCase("embeddings.cls_token", "vit.embeddings.cls_token")]
    [TestCase("encoder.layer.3.layernorm_after.bias", "vit.encoder.layer.3.layernorm_after.bias")]
    [TestCase("layernorm.weight", "vit.layernorm.weight")]
    [TestCase("classifier.bias", "classifier.bias")]
    public void BareHuggingFaceNamesMapToOurs(string hf, string ours) => Assert.That(VitCheckpoint.Canonical(hf), Is.EqualTo(ours));
}
