using NativeSparsity.Engine.Backends.Cpu;
using NativeSparsity.Engine.Sparsity;
using NativeSparsity.Models.Bert;
using NativeSparsity.Tests.Engine;
using NUnit.Framework;

namespace NativeSparsity.Tests.Models;

/// <summary>A pruned BERT run through the sparse kernel gives the dense model's hidden states (to float rounding).</summary>
public class SparseInferenceTests
{
    [Test]
    public void SparseEncoderMatchesTheDenseOneAndRefusesToTrain()
    {
        int seed = TestUtil.FreshSeed();
        var cpu = new CpuBackend();
        var cfg = new BertConfig { VocabSize = 40, HiddenSize = 32, NumAttentionHeads = 2, NumHiddenLayers = 2, IntermediateSize = 72, MaxPositionEmbeddings = 40 };
        using var p = new BertParameters(cpu, new BertParameterLayout(cfg, BertHeads.PreTraining));
        p.Initialize((ulong)seed);
        Masks.GlobalMagnitude(p.PrunableSet(), 0.8).Apply(cpu);
        var rng = new Random(seed);
        var batch = new BertBatch(3, 19);   // 57 tokens: three full tiles of 16 and a partial one
        for (int i = 0; i < batch.InputIds.Length; i++) batch.InputIds[i] = rng.Next(cfg.VocabSize);
        Array.Fill(batch.AttentionMask, 1);
        using var dense = new BertModel(p, 3, 19);
        using var sparse = new BertModel(p, 3, 19, sparseFrom: 0);
        Assert.That(sparse.SparseProjections, Is.EqualTo(4 * cfg.NumHiddenLayers));
        Assert.That(dense.SparseProjections, Is.Zero);
        using (var strict = new BertModel(p, 3, 19, sparseFrom: 0.999)) Assert.That(strict.SparseProjections, Is.Zero);
        dense.Forward(batch, DropoutPlan.Off);
        sparse.Forward(batch, DropoutPlan.Off);
        var hd = TestUtil.Download(dense.LastHidden);
        var hs = TestUtil.Download(sparse.LastHidden);
        double scale = hd.Max(v => Math.Abs((double)v));
        for (int i = 0; i < hd.Length; i++) Assert.That(hs[i], Is.EqualTo(hd[i]).Within(1e-5 * scale), $"hidden state {i}");
        Assert.Throws<InvalidOperationException>(() => sparse.Backward());
    }
}
