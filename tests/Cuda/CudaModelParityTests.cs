using NativeSparsity.Engine.Backends;
using NativeSparsity.Engine.Backends.Cpu;
using NativeSparsity.Engine.Backends.Cuda;
using NativeSparsity.Engine.Tensors;
using NativeSparsity.Models.Bert;
using NativeSparsity.Models.Vit;
using NativeSparsity.Tests.Engine;
using NUnit.Framework;

namespace NativeSparsity.Tests.Cuda;

/// <summary>
/// Whole models on the CPU and the GPU from the same weights and batch: the loss and every
/// parameter tensor's gradient must agree (strict FP32 GEMMs, so only summation order differs).
/// With dropout on, the masks come from the same Philox counters on both sides, so the check
/// covers them too. Op-level parity is in CudaParityTests; this catches wiring between ops
/// (strides, views, head layouts, scratch reuse) that no single-op test sees. Skipped, with the
/// reason, where no GPU is usable.
/// </summary>
[NonParallelizable]
public class CudaModelParityTests
{
    private const double LossTolerance = 1e-4, GradTolerance = 2e-3;
    private CpuBackend _cpu = null!;
    private CudaBackend? _gpu;
    private string _why = "";

    [OneTimeSetUp]
    public void OpenBackends()
    {
        _cpu = new CpuBackend();
        try { _gpu = CudaBackend.Create(); }
        catch (Exception e) { _why = $"{e.GetType().Name}: {e.Message}"; }
    }

    [OneTimeTearDown]
    public void CloseBackends()
    {
        _gpu?.Dispose();
        _cpu.Dispose();
    }

    [SetUp]
    public void RequireGpu()
    {
        if (_gpu == null) Assert.Ignore($"no usable GPU, model parity not checked: {_why}");
        _gpu.StrictFp32 = true;
    }

    [TestCase(false, TestName = "BertParity_MaskedLmAndNextSentence")]
    [TestCase(true, TestName = "BertParity_MaskedLmAndNextSentence_Dropout")]
    public void Bert(bool dropout)
    {
        int seed = TestUtil.FreshSeed();
        var rng = new System.Random(seed);
        var cfg = new BertConfig
        {
            VocabSize = 97, HiddenSize = 48, NumAttentionHeads = 3, NumHiddenLayers = 2, IntermediateSize = 80,
            MaxPositionEmbeddings = 16, HiddenDropoutProb = 0.1f, AttentionProbsDropoutProb = 0.1f,
        };
        var layout = new BertParameterLayout(cfg, BertHeads.PreTraining with { NextSentence = true });
        using var pc = new BertParameters(_cpu, layout);
        using var pg = new BertParameters(_gpu!, layout);
        pc.Initialize((ulong)seed);
        _gpu!.CopyFromHost<float>(TestUtil.Download(pc.Values), pg.Values);

        var batch = new BertBatch(3, 11);
        for (int i = 0; i < 33; i++)
        {
            batch.InputIds[i] = rng.Next(cfg.VocabSize);
            batch.TokenTypeIds[i] = i % 11 >= 5 ? 1 : 0;
            batch.AttentionMask[i] = i >= 29 ? 0 : 1;   // the last row is padded
        }
        batch.MlmPositions = new[] { 0, 4, 12, 17, 25, 28 };
        batch.MlmLabels = batch.MlmPositions.Select(_ => rng.Next(cfg.VocabSize)).ToArray();
        batch.NextSentenceLabels = new[] { 0, 1, 1 };
        var plan = dropout ? new DropoutPlan(true, (ulong)seed, 7, 0.1f, 0.1f) : DropoutPlan.Off;

        using var mc = new BertModel(pc, 3, 11);
        using var mg = new BertModel(pg, 3, 11);
        Compare(layout.Slots.Select(s => (s.Name, s.Offset, s.Length)),
            () => { pc.ZeroGrads(); double l = mc.Forward(batch, plan); mc.Backward(); return (l, TestUtil.Download(pc.Grads)); },
            () => { pg.ZeroGrads(); double l = mg.Forward(batch, plan); mg.Backward(); return (l, TestUtil.Download(pg.Grads)); });
    }

    [TestCase(false, TestName = "VitParity_ClassifierAndMaskedPatches")]
    [TestCase(true, TestName = "VitParity_ClassifierAndMaskedPatches_Dropout")]
    public void Vit(bool dropout)
    {
        int seed = TestUtil.FreshSeed();
        var rng = new System.Random(seed);
        var cfg = VitConfig.FromPreset("tiny", imageSize: 12, patchSize: 4, numChannels: 2) with
        {
            HiddenSize = 48, NumAttentionHeads = 3, NumHiddenLayers = 2, IntermediateSize = 80,
            HiddenDropoutProb = 0.1f, AttentionProbsDropoutProb = 0.1f,
        };
        var layout = new VitParameterLayout(cfg, new VitHeads(ClassifierLabels: 5, MaskedPatches: true));
        using var pc = new VitParameters(_cpu, layout);
        using var pg = new VitParameters(_gpu!, layout);
        pc.Initialize((ulong)seed);
        _gpu!.CopyFromHost<float>(TestUtil.Download(pc.Values), pg.Values);

        var batch = new VitBatch(cfg, 3);
        for (int i = 0; i < batch.Patches.Length; i++) batch.Patches[i] = (float)(rng.NextDouble() * 2 - 1);
        batch.Labels = new[] { rng.Next(5), rng.Next(5), rng.Next(5) };
        batch.PatchMask = Enumerable.Range(0, 3 * cfg.NumPatches).Select(i => (byte)(i % 3 == 1 ? 1 : 0)).ToArray();
        var plan = dropout ? new DropoutPlan(true, (ulong)seed, 5, 0.1f, 0.1f) : DropoutPlan.Off;

        using var mc = new VitModel(pc, 3);
        using var mg = new VitModel(pg, 3);
        Compare(layout.Slots.Select(s => (s.Name, s.Offset, s.Length)),
            () => { pc.ZeroGrads(); double l = mc.Forward(batch, plan); mc.Backward(); return (l, TestUtil.Download(pc.Grads)); },
            () => { pg.ZeroGrads(); double l = mg.Forward(batch, plan); mg.Backward(); return (l, TestUtil.Download(pg.Grads)); });
    }

    private static void Compare(IEnumerable<(string Name, long Offset, long Length)> slots,
                                Func<(double Loss, float[] Grads)> cpu, Func<(double Loss, float[] Grads)> gpu)
    {
        var (lc, gc) = cpu();
        var (lg, gg) = gpu();
        Assert.That(double.IsFinite(lc) && lc > 0, $"CPU loss {lc}");
        Assert.That(Math.Abs(lg - lc), Is.LessThanOrEqualTo(LossTolerance * Math.Abs(lc)), $"loss: gpu {lg} vs cpu {lc}");
        var failures = new List<string>();
        foreach (var (name, offset, length) in slots)
        {
            double num = 0, den = 0;
            for (long i = offset; i < offset + length; i++) { double d = gg[i] - gc[i]; num += d * d; den += (double)gc[i] * gc[i]; }
            if (den == 0 && num == 0) continue;
            double rel = Math.Sqrt(num / Math.Max(den, 1e-30));
            if (rel > GradTolerance && Math.Sqrt(num) > 1e-6) failures.Add($"{name}: ||gpu - cpu|| / ||cpu|| = {rel:g3}");
        }
        Assert.That(failures, Is.Empty, string.Join("\n", failures));
    }
}
