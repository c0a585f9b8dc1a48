using NativeSparsity.Engine.Backends.Cpu;
using NativeSparsity.Engine.Sparsity;
using NativeSparsity.Engine.Tensors;
using NativeSparsity.Experiments.Tasks;
using NativeSparsity.Experiments.Training;
using NativeSparsity.Models.Bert;
using NativeSparsity.Models.Text;
using NativeSparsity.Tests.Engine;
using NativeSparsity.Tests.Experiments;
using NUnit.Framework;

namespace NativeSparsity.Tests.Models;

/// <summary>
/// Fixed-mask training through the sparse kernels: a sparse Linear against a float64 reference,
/// a BERT's gradients against the dense path with the same mask, and whole fine-tuning steps.
/// </summary>
public class SparseTrainingTests
{
    [Test]
    public void SparseLinearForwardAndBackwardMatchFloat64Reference([Values(0.0, 0.7, 1.0)] double sparsity, [Values(false, true)] bool accumulateDx)
    {
        var rng = new Random(TestUtil.FreshSeed());
        var cpu = new CpuBackend();
        int rows = 19, inF = 37, outF = 23;
        var w = TestUtil.RandomNormals(rng, outF * inF, 0.3f);
        var keep = w.Select(_ => (byte)(rng.NextDouble() >= sparsity ? 1 : 0)).ToArray();
        keep[5] = 1; w[5] = 0f; // a kept weight that is exactly zero stays in the pattern
        for (int i = 0; i < w.Length; i++) if (keep[i] == 0) w[i] = 0f;
        var x = TestUtil.RandomNormals(rng, rows * inF);
        var dy = TestUtil.RandomNormals(rng, rows * outF);
        var bias = TestUtil.RandomNormals(rng, outF);
        var dx0 = TestUtil.RandomNormals(rng, rows * inF);
        var dw0 = TestUtil.RandomNormals(rng, outF * inF);
        var weight = TestUtil.Upload(cpu, w, outF, inF);
        var csr = SparseRowMatrix.FromDense(w, outF, inF, keep);
        Assert.That(csr.NonZeros, Is.EqualTo(keep.Count(k => k != 0)));
        var linear = new Linear(weight, TestUtil.Upload(cpu, bias), TestUtil.Upload(cpu, dw0), TestUtil.Upload(cpu, new float[outF]), inF, outF)
            with { Sparse = csr, SparseTransposed = csr.Transpose(), SparseWeightGrad = true };
        var xt = TestUtil.Upload(cpu, x);
        var y = cpu.Allocate(DType.F32, rows * outF);
        var dxt = TestUtil.Upload(cpu, dx0);
        linear.Forward(cpu, xt, y, rows);
        linear.Backward(cpu, TestUtil.Upload(cpu, dy), xt, dxt, rows, accumulateDx);

        var yRef = new double[rows * outF];
        var dxRef = new double[rows * inF];
        var dwRef = new double[outF * inF];
        for (int t = 0; t < rows; t++)
            for (int o = 0; o < outF; o++)
            {
                double s = bias[o];
                for (int i = 0; i < inF; i++) s += (double)x[t * inF + i] * w[o * inF + i];
                yRef[t * outF + o] = s;
            }
        for (int t = 0; t < rows; t++)
            for (int i = 0; i < inF; i++)
            {
                double s = accumulateDx ? dx0[t * inF + i] : 0;
                for (int o = 0; o < outF; o++) s += (double)dy[t * outF + o] * w[o * inF + i];
                dxRef[t * inF + i] = s;
            }
        for (int o = 0; o < outF; o++)
            for (int i = 0; i < inF; i++)
            {
                double s = dw0[o * inF + i];
                // Pruned positions are left as they were; the masked update never reads them.
                if (keep[o * inF + i] != 0)
                    for (int t = 0; t < rows; t++) s += (double)dy[t * outF + o] * x[t * inF + i];
                dwRef[o * inF + i] = s;
            }
        TestUtil.AssertClose(TestUtil.Download(y), yRef, 1e-5, 1e-5, "y");
        TestUtil.AssertClose(TestUtil.Download(dxt), dxRef, 1e-5, 1e-5, "dx");
        TestUtil.AssertClose(TestUtil.Download(linear.WeightGrad), dwRef, 1e-5, 1e-5, "dW");
    }

    [Test]
    public void BertGradientsMatchTheDensePathAtKeptPositions()
    {
        int seed = TestUtil.FreshSeed();
        var cpu = new CpuBackend();
        var cfg = new BertConfig { VocabSize = 40, HiddenSize = 32, NumAttentionHeads = 2, NumHiddenLayers = 2, IntermediateSize = 72, MaxPositionEmbeddings = 40 };
        using var p = new BertParameters(cpu, new BertParameterLayout(cfg, BertHeads.SequenceClassification(3)));
        p.Initialize((ulong)seed);
        var mask = Masks.GlobalMagnitude(p.PrunableSet(), 0.8);
        mask.Apply(cpu);
        var keep = mask.Keep.U8Span().ToArray();
        var rng = new Random(seed);
        var batch = new BertBatch(3, 19) { Labels = new[] { 0, 2, 1 } };
        for (int i = 0; i < batch.InputIds.Length; i++) batch.InputIds[i] = rng.Next(cfg.VocabSize);
        for (int i = 0; i < batch.AttentionMask.Length; i++) batch.AttentionMask[i] = i % 19 < 15 ? 1 : 0;
        var dropout = new DropoutPlan(true, (ulong)seed, 0, 0.1f, 0.1f);

        float[] Grads(BertModel model, out double loss)
        {
            p.ZeroGrads();
            loss = model.Forward(batch, dropout);
            model.Backward();
            return TestUtil.Download(p.Grads);
        }
        using var dense = new BertModel(p, 3, 19);
        var g = Grads(dense, out double denseLoss);
        // Everything sparse, including dW, so every sparse op is compared.
        var sparseWeights = SparseEncoderWeights.ForTraining(p, keep, forwardFrom: 0, weightGradFrom: 0)!;
        Assert.That(sparseWeights.Count, Is.EqualTo(4 * cfg.NumHiddenLayers));
        using var sparse = new BertModel(p, 3, 19, sparse: sparseWeights);
        var gs = Grads(sparse, out double sparseLoss);
        Assert.That(sparseLoss, Is.EqualTo(denseLoss).Within(1e-5 * Math.Abs(denseLoss)));
        double scale = g.Max(v => Math.Abs((double)v));
        int prunable = keep.Length;
        for (int i = 0; i < g.Length; i++)
        {
            if (i < prunable && keep[i] == 0)
                Assert.That(BitConverter.SingleToInt32Bits(gs[i]), Is.Zero, $"pruned weight {i}: no gradient on the sparse path");
            else
                Assert.That(gs[i], Is.EqualTo(g[i]).Within(1e-4 * scale), $"gradient {i}");
        }
        // Dense projections (a threshold above this mask's sparsity) leave the model dense.
        Assert.That(SparseEncoderWeights.ForTraining(p, keep, forwardFrom: 0.99)!.Count, Is.Zero);
    }

    [Test]
    public void FinetuningStepsThroughSparseKernelsTrackTheDenseSteps()
    {
        int seed = TestUtil.FreshSeed();
        string root = FinetuneFixtures.TempFolder("ft-sparse");
        try
        {
            FinetuneFixtures.WriteCheckpoint(root, (ulong)seed, hidden: 32, layers: 2);
            var task = FinetuneFixtures.ContainsApple(24, 8, seed);
            var be = new CpuBackend();
            (float[] Values, double[] Losses, int Sparse, byte[] Keep) Run(bool sparseKernels)
            {
                using var p = BertFinetuner.LoadForTask(root, be, task, (ulong)seed);
                var mask = Masks.GlobalMagnitude(p.PrunableSet(), 0.85);
                // Clipping off: the sparse path never forms pruned weights' gradients, so its norm counts kept weights only.
                var settings = new FinetuneSettings { Epochs = 1, BatchSize = 8, MaxSteps = 3, Seed = (ulong)seed, LearningRate = 1e-3f, MaxGradNorm = 0, SparseKernels = sparseKernels };
                using var tuner = new BertFinetuner(p, task, Tokenizers.Load(root), settings, mask);
                var losses = new List<double>();
                tuner.Train(onStep: s => losses.Add(s.Loss));
                return (TestUtil.Download(p.Values), losses.ToArray(), tuner.SparseProjections, mask.Keep.U8Span().ToArray());
            }
            var dense = Run(false);
            var sparse = Run(true);
            Assert.That(dense.Sparse, Is.Zero);
            Assert.That(sparse.Sparse, Is.GreaterThan(0), "an 85% mask puts projections beyond the break-even");
            Assert.That(sparse.Losses, Is.EqualTo(dense.Losses).Within(1e-4), "step losses");
            for (int i = 0; i < dense.Values.Length; i++)
            {
                if (i < sparse.Keep.Length && sparse.Keep[i] == 0)
                    Assert.That(BitConverter.SingleToInt32Bits(sparse.Values[i]), Is.Zero, $"pruned weight {i} is exactly +0");
                else
                    Assert.That(sparse.Values[i], Is.EqualTo(dense.Values[i]).Within(1e-4), $"parameter {i} after 3 steps");
            }
        }
        finally { if (Directory.Exists(root)) Directory.Delete(root, true); }
    }
}
