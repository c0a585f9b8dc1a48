using NativeSparsity.Engine.Backends;
using NativeSparsity.Engine.Backends.Cpu;
using NativeSparsity.Engine.Backends.Cuda;
using NativeSparsity.Engine.Tensors;
using NativeSparsity.Tests.Engine;
using NUnit.Framework;

namespace NativeSparsity.Tests.Cuda;

/// <summary>
/// Every op on the CPU and the GPU from the same random inputs: ||gpu - cpu|| / ||cpu|| under 1e-5 for
/// fp32 math, under 1e-3 for TF32 GEMMs; layout ops and masks must match exactly. Skipped, with the
/// reason, where no GPU is usable.
/// </summary>
[NonParallelizable]
public class CudaParityTests
{
    private const double Fp32 = 1e-5, Tf32 = 1e-3;
    private CpuBackend _cpu = null!;
    private CudaBackend? _gpu;
    private string _why = "";
    private System.Random _rng = null!;

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
        if (_gpu == null) Assert.Ignore($"no usable GPU, parity not checked: {_why}");
        _gpu.StrictFp32 = false;
        _rng = new System.Random(TestUtil.FreshSeed());
    }

    private CudaBackend Gpu => _gpu!;

    // ---- helpers -------------------------------------------------------------------------------

    private float[] Rand(long n, float scale = 1f) => TestUtil.RandomFloats(_rng, checked((int)n), scale);

    private (Tensor Cpu, Tensor Gpu) Both(float[] data, params int[] shape) =>
        (TestUtil.Upload(_cpu, data, shape), TestUtil.Upload(Gpu, data, shape));

    private (Tensor Cpu, Tensor Gpu) Both(int[] data) => (TestUtil.Upload(_cpu, data), TestUtil.Upload(Gpu, data));

    private (Tensor Cpu, Tensor Gpu) Both(byte[] data) => (TestUtil.Upload(_cpu, data), TestUtil.Upload(Gpu, data));

    private static void Close((Tensor Cpu, Tensor Gpu) t, double tolerance, string what)
    {
        float[] cpu = TestUtil.Download(t.Cpu), gpu = TestUtil.Download(t.Gpu);
        double err = TestUtil.RelativeError(gpu, Array.ConvertAll(cpu, x => (double)x));
        Assert.That(err, Is.LessThan(tolerance), $"{what}: relative error {err:g3}");
        for (int i = 0; i < cpu.Length; i++)
            if (float.IsNaN(cpu[i]) != float.IsNaN(gpu[i]))
                Assert.Fail($"{what}: element {i} is {gpu[i]} on the GPU, {cpu[i]} on the CPU");
    }

    private static void Exact((Tensor Cpu, Tensor Gpu) t, string what)
    {
        float[] cpu = TestUtil.Download(t.Cpu), gpu = TestUtil.Download(t.Gpu);
        for (int i = 0; i < cpu.Length; i++)
            if (BitConverter.SingleToInt32Bits(cpu[i]) != BitConverter.SingleToInt32Bits(gpu[i]))
                Assert.Fail($"{what}: element {i} is {gpu[i]} on the GPU, {cpu[i]} on the CPU (must be identical)");
    }

    // ---- memory --------------------------------------------------------------------------------

    [TestCase(1)] [TestCase(7)] [TestCase(100_003)]
    public void HostRoundTripsAndFillAndCopy(int n)
    {
        float[] data = Rand(n);
        var t = TestUtil.Upload(Gpu, data);
        Assert.That(TestUtil.Download(t), Is.EqualTo(data));
        var copy = Gpu.Allocate(DType.F32, n);
        Gpu.Copy(t, copy);
        Assert.That(TestUtil.Download(copy), Is.EqualTo(data));
        Gpu.Fill(t, -2.5f);
        Assert.That(TestUtil.Download(t), Is.All.EqualTo(-2.5f));
        var zeros = Gpu.Allocate(DType.F32, n);
        Assert.That(TestUtil.Download(zeros), Is.All.EqualTo(0f));

        int[] ids = Enumerable.Range(0, n).Select(_ => _rng.Next()).ToArray();
        var ti = TestUtil.Upload(Gpu, ids);
        var back = new int[n];
        Gpu.CopyToHost<int>(ti, back);
        Assert.That(back, Is.EqualTo(ids));
        byte[] bytes = Enumerable.Range(0, n).Select(_ => (byte)_rng.Next(256)).ToArray();
        var tb = TestUtil.Upload(Gpu, bytes);
        var backBytes = new byte[n];
        Gpu.CopyToHost<byte>(tb, backBytes);
        Assert.That(backBytes, Is.EqualTo(bytes));
    }

    [Test]
    public void SteadyStateAllocationsReuseCachedBlocks()
    {
        for (int i = 0; i < 3; i++) using (Gpu.Allocate(DType.F32, 1000, 77).Storage) { }
        long before = Gpu.Allocator.DeviceAllocations;
        for (int i = 0; i < 10; i++) using (Gpu.Allocate(DType.F32, 1000, 77).Storage) { }
        Assert.That(Gpu.Allocator.DeviceAllocations, Is.EqualTo(before));
    }

    // ---- GEMM ----------------------------------------------------------------------------------

    [TestCase(false, false, 1, 1, 1)] [TestCase(false, true, 7, 13, 5)] [TestCase(true, false, 13, 7, 5)]
    [TestCase(true, true, 33, 65, 17)] [TestCase(false, false, 128, 96, 768)] [TestCase(false, true, 5, 3, 1)]
    public void Gemm(bool transA, bool transB, int m, int n, int k)
    {
        foreach (bool strict in new[] { false, true })
        {
            Gpu.StrictFp32 = strict;
            int lda = (transA ? m : k) + 3, ldb = (transB ? k : n) + 1, ldc = n + 2;
            var a = Both(Rand((long)(transA ? k : m) * lda));
            var b = Both(Rand((long)(transB ? n : k) * ldb));
            float[] c0 = Rand((long)m * ldc);
            foreach (float beta in new[] { 0f, 0.5f })
            {
                if (beta == 0f) c0[0] = float.NaN;   // beta = 0 must ignore C, NaN included
                var c = Both(c0);
                _cpu.Gemm(transA, transB, m, n, k, 1.25f, a.Cpu, lda, b.Cpu, ldb, beta, c.Cpu, ldc);
                Gpu.Gemm(transA, transB, m, n, k, 1.25f, a.Gpu, lda, b.Gpu, ldb, beta, c.Gpu, ldc);
                Close(c, strict ? Fp32 : Tf32, $"gemm strict={strict} beta={beta}");
                c0[0] = 0.5f;
            }
        }
    }

    [TestCase(false, true, 4, 9, 7, 3)] [TestCase(true, false, 64, 64, 64, 12)] [TestCase(false, false, 1, 1, 1, 1)]
    public void GemmStridedBatched(bool transA, bool transB, int m, int n, int k, int batch)
    {
        int lda = transA ? m : k, ldb = transB ? k : n, ldc = n;
        long sa = (long)m * k + 5, sb = (long)k * n + 2, sc = (long)m * n + 1;
        var a = Both(Rand(sa * batch)); var b = Both(Rand(sb * batch)); var c = Both(Rand(sc * batch));
        _cpu.GemmStridedBatched(transA, transB, m, n, k, 0.7f, a.Cpu, lda, sa, b.Cpu, ldb, sb, 0.3f, c.Cpu, ldc, sc, batch);
        Gpu.GemmStridedBatched(transA, transB, m, n, k, 0.7f, a.Gpu, lda, sa, b.Gpu, ldb, sb, 0.3f, c.Gpu, ldc, sc, batch);
        Close(c, Tf32, "batched gemm");
    }

    // ---- bias, GELU ------------------------------------------------------------------------------

    [TestCase(1, 1)] [TestCase(7, 13)] [TestCase(300, 768)] [TestCase(129, 5)]
    public void Bias(int rows, int cols)
    {
        var y = Both(Rand((long)rows * cols)); var bias = Both(Rand(cols));
        _cpu.AddBias(y.Cpu, bias.Cpu, rows, cols); Gpu.AddBias(y.Gpu, bias.Gpu, rows, cols);
        Close(y, Fp32, "AddBias");
        var dy = Both(Rand((long)rows * cols)); var db = Both(Rand(cols));
        _cpu.BiasGradient(dy.Cpu, db.Cpu, rows, cols); Gpu.BiasGradient(dy.Gpu, db.Gpu, rows, cols);
        Close(db, Fp32, "BiasGradient");
    }

    [TestCase(1)] [TestCase(7)] [TestCase(4099)]
    public void Gelu(int n)
    {
        var x = Both(Rand(n, 4f)); var y = Both(new float[n]);
        _cpu.GeluForward(x.Cpu, y.Cpu); Gpu.GeluForward(x.Gpu, y.Gpu);
        Close(y, Fp32, "GeluForward");
        var dy = Both(Rand(n)); var dx = Both(new float[n]);
        _cpu.GeluBackward(x.Cpu, dy.Cpu, dx.Cpu); Gpu.GeluBackward(x.Gpu, dy.Gpu, dx.Gpu);
        Close(dx, Fp32, "GeluBackward");
    }

    [TestCase(1)] [TestCase(7)] [TestCase(4099)]
    public void Tanh(int n)
    {
        var x = Both(Rand(n, 4f)); var y = Both(new float[n]);
        _cpu.TanhForward(x.Cpu, y.Cpu); Gpu.TanhForward(x.Gpu, y.Gpu);
        Close(y, Fp32, "TanhForward");
        var dy = Both(Rand(n)); var dx = Both(new float[n]);
        _cpu.TanhBackward(y.Cpu, dy.Cpu, dx.Cpu); Gpu.TanhBackward(y.Gpu, dy.Gpu, dx.Gpu);
        Close(dx, Fp32, "TanhBackward");
    }

    // ---- LayerNorm -----------------------------------------------------------------------------

    [TestCase(1, 1)] [TestCase(7, 13)] [TestCase(200, 768)] [TestCase(3, 1000)]
    public void LayerNorm(int rows, int cols)
    {
        long n = (long)rows * cols;
        float[] xs = Rand(n, 3f);
        for (int i = 0; i < xs.Length; i++) xs[i] += 5f;   // a large mean tests the centred variance
        var x = Both(xs); var gamma = Both(Rand(cols)); var beta = Both(Rand(cols));
        var y = Both(new float[n]); var mean = Both(new float[rows]); var rstd = Both(new float[rows]);
        _cpu.LayerNormForward(x.Cpu, gamma.Cpu, beta.Cpu, y.Cpu, mean.Cpu, rstd.Cpu, rows, cols, 1e-12f);
        Gpu.LayerNormForward(x.Gpu, gamma.Gpu, beta.Gpu, y.Gpu, mean.Gpu, rstd.Gpu, rows, cols, 1e-12f);
        Close(y, Fp32, "LayerNorm y"); Close(mean, Fp32, "LayerNorm mean"); Close(rstd, Fp32, "LayerNorm rstd");

        var a = Both(Rand(n)); var b = Both(Rand(n)); var sum = Both(new float[n]);
        _cpu.AddLayerNormForward(a.Cpu, b.Cpu, sum.Cpu, gamma.Cpu, beta.Cpu, y.Cpu, mean.Cpu, rstd.Cpu, rows, cols, 1e-5f);
        Gpu.AddLayerNormForward(a.Gpu, b.Gpu, sum.Gpu, gamma.Gpu, beta.Gpu, y.Gpu, mean.Gpu, rstd.Gpu, rows, cols, 1e-5f);
        Exact(sum, "AddLayerNorm sum"); Close(y, Fp32, "AddLayerNorm y"); Close(rstd, Fp32, "AddLayerNorm rstd");

        var dy = Both(Rand(n)); var dx = Both(new float[n]); var dgamma = Both(Rand(cols)); var dbeta = Both(Rand(cols));
        _cpu.LayerNormBackward(dy.Cpu, sum.Cpu, gamma.Cpu, mean.Cpu, rstd.Cpu, dx.Cpu, dgamma.Cpu, dbeta.Cpu, rows, cols);
        Gpu.LayerNormBackward(dy.Gpu, sum.Gpu, gamma.Gpu, mean.Gpu, rstd.Gpu, dx.Gpu, dgamma.Gpu, dbeta.Gpu, rows, cols);
        if (cols > 1) Close(dx, Fp32, "LayerNorm dx");   // with one column dx is rounding noise around 0
        Close(dgamma, Fp32, "LayerNorm dgamma"); Close(dbeta, Fp32, "LayerNorm dbeta");
    }

    // ---- attention -------------------------------------------------------------------------------

    [TestCase(1, 1, 1, 1)] [TestCase(2, 7, 3, 5)] [TestCase(3, 33, 12, 64)]
    public void HeadLayouts(int batch, int seq, int heads, int headDim)
    {
        long n = (long)batch * seq * heads * headDim;
        var qkv = Both(Rand(3 * n)); var q = Both(new float[n]); var k = Both(new float[n]); var v = Both(new float[n]);
        _cpu.SplitQkvHeads(qkv.Cpu, q.Cpu, k.Cpu, v.Cpu, batch, seq, heads, headDim);
        Gpu.SplitQkvHeads(qkv.Gpu, q.Gpu, k.Gpu, v.Gpu, batch, seq, heads, headDim);
        Exact(q, "q"); Exact(k, "k"); Exact(v, "v");
        var dqkv = Both(Rand(3 * n));
        _cpu.SplitQkvHeadsBackward(q.Cpu, k.Cpu, v.Cpu, dqkv.Cpu, batch, seq, heads, headDim);
        Gpu.SplitQkvHeadsBackward(q.Gpu, k.Gpu, v.Gpu, dqkv.Gpu, batch, seq, heads, headDim);
        Exact(dqkv, "dqkv");
        var merged = Both(new float[n]);
        _cpu.MergeHeads(q.Cpu, merged.Cpu, batch, seq, heads, headDim); Gpu.MergeHeads(q.Gpu, merged.Gpu, batch, seq, heads, headDim);
        Exact(merged, "merged");
        var dsplit = Both(new float[n]);
        _cpu.MergeHeadsBackward(merged.Cpu, dsplit.Cpu, batch, seq, heads, headDim);
        Gpu.MergeHeadsBackward(merged.Gpu, dsplit.Gpu, batch, seq, heads, headDim);
        Exact(dsplit, "MergeHeadsBackward");
    }

    [TestCase(1, 1, 1, 1)] [TestCase(2, 3, 7, 5)] [TestCase(2, 12, 128, 128)] [TestCase(1, 2, 3, 513)]
    public void AttentionSoftmax(int batch, int heads, int seqQ, int seqK)
    {
        long n = (long)batch * heads * seqQ * seqK;
        float[] mask = new float[batch * seqK];
        for (int i = 0; i < mask.Length; i++) mask[i] = _rng.Next(4) == 0 && i % seqK != 0 ? -10000f : 0f;
        var scores = Both(Rand(n, 8f)); var keyMask = Both(mask); var probs = Both(new float[n]);
        _cpu.AttentionSoftmaxForward(scores.Cpu, keyMask.Cpu, probs.Cpu, 0.125f, batch, heads, seqQ, seqK);
        Gpu.AttentionSoftmaxForward(scores.Gpu, keyMask.Gpu, probs.Gpu, 0.125f, batch, heads, seqQ, seqK);
        Close(probs, Fp32, "softmax forward");
        var dprobs = Both(Rand(n)); var dscores = Both(new float[n]);
        _cpu.AttentionSoftmaxBackward(probs.Cpu, dprobs.Cpu, dscores.Cpu, 0.125f, batch * heads * seqQ, seqK);
        Gpu.AttentionSoftmaxBackward(probs.Gpu, dprobs.Gpu, dscores.Gpu, 0.125f, batch * heads * seqQ, seqK);
        if (seqK > 1) Close(dscores, Fp32, "softmax backward");
    }

    // ---- embeddings ------------------------------------------------------------------------------

    [TestCase(1, 1, 1)] [TestCase(37, 11, 13)] [TestCase(512, 100, 768)] [TestCase(300, 2, 64)]
    public void Embedding(int count, int vocab, int dim)
    {
        int[] idData = Enumerable.Range(0, count).Select(_ => _rng.Next(vocab)).ToArray();
        var ids = Both(idData); var table = Both(Rand((long)vocab * dim)); var output = Both(Rand((long)count * dim));
        _cpu.EmbeddingForward(ids.Cpu, table.Cpu, output.Cpu, count, dim, accumulate: true);
        Gpu.EmbeddingForward(ids.Gpu, table.Gpu, output.Gpu, count, dim, accumulate: true);
        Close(output, Fp32, "embedding accumulate");
        _cpu.EmbeddingForward(ids.Cpu, table.Cpu, output.Cpu, count, dim, accumulate: false);
        Gpu.EmbeddingForward(ids.Gpu, table.Gpu, output.Gpu, count, dim, accumulate: false);
        Exact(output, "embedding lookup");

        var dout = Both(Rand((long)count * dim)); float[] dt0 = Rand((long)vocab * dim); var dtable = Both(dt0);
        _cpu.EmbeddingBackward(ids.Cpu, dout.Cpu, dtable.Cpu, count, dim);
        Gpu.EmbeddingBackward(ids.Gpu, dout.Gpu, dtable.Gpu, count, dim);
        Close(dtable, Fp32, "embedding backward");
        float[] first = TestUtil.Download(dtable.Gpu);
        Gpu.CopyFromHost<float>(dt0, dtable.Gpu);
        Gpu.EmbeddingBackward(ids.Gpu, dout.Gpu, dtable.Gpu, count, dim);
        Assert.That(TestUtil.Download(dtable.Gpu), Is.EqualTo(first), "embedding backward is not deterministic");
    }

    [Test]
    public void EmbeddingIdOutOfRangeIsReportedAtSynchronize()
    {
        var ids = TestUtil.Upload(Gpu, new[] { 0, 5 }); var table = TestUtil.Upload(Gpu, Rand(4 * 3)); var output = Gpu.Allocate(DType.F32, 2, 3);
        Gpu.EmbeddingForward(ids, table, output, 2, 3, accumulate: false);
        Assert.That(() => Gpu.Synchronize(), Throws.TypeOf<ArgumentOutOfRangeException>().With.Message.Contains("token id"));
        Assert.That(() => Gpu.Synchronize(), Throws.Nothing, "the error is reported once");
    }

    // ---- dropout ---------------------------------------------------------------------------------

    [TestCase(1, 0.1f, 0UL)] [TestCase(7, 0.5f, 5UL)] [TestCase(10_001, 0.1f, 0xFFFF_FFFDUL)] [TestCase(64, 0f, 3UL)] [TestCase(9, 1f, 1UL)]
    public void Dropout(int n, float p, ulong counter)
    {
        var x = Both(Rand(n)); var y = Both(new float[n]);
        _cpu.DropoutForward(x.Cpu, y.Cpu, p, 1234567890123UL, 77UL, counter);
        Gpu.DropoutForward(x.Gpu, y.Gpu, p, 1234567890123UL, 77UL, counter);
        float[] cy = TestUtil.Download(y.Cpu), gy = TestUtil.Download(y.Gpu);
        for (int i = 0; i < n; i++) Assert.That(gy[i] == 0f, Is.EqualTo(cy[i] == 0f), $"mask differs at element {i}");
        Close(y, 1e-6, "dropout forward");
        var dy = Both(Rand(n)); var dx = Both(new float[n]);
        _cpu.DropoutBackward(dy.Cpu, dx.Cpu, p, 1234567890123UL, 77UL, counter);
        Gpu.DropoutBackward(dy.Gpu, dx.Gpu, p, 1234567890123UL, 77UL, counter);
        Close(dx, 1e-6, "dropout backward");
    }

    // ---- cross-entropy -----------------------------------------------------------------------------

    [TestCase(1, 1)] [TestCase(9, 7)] [TestCase(64, 30522)] [TestCase(33, 1000)]
    public void CrossEntropy(int rows, int classes)
    {
        int[] targets = Enumerable.Range(0, rows).Select(r => r % 4 == 3 ? -100 : _rng.Next(classes)).ToArray();
        var logits = Both(Rand((long)rows * classes, 10f)); var t = Both(targets); var losses = Both(Rand(rows));
        _cpu.CrossEntropyForward(logits.Cpu, t.Cpu, losses.Cpu, rows, classes, -100);
        Gpu.CrossEntropyForward(logits.Gpu, t.Gpu, losses.Gpu, rows, classes, -100);
        if (classes > 1) Close(losses, Fp32, "cross-entropy losses");
        var dlogits = Both(Rand((long)rows * classes));
        _cpu.CrossEntropyBackward(logits.Cpu, t.Cpu, dlogits.Cpu, rows, classes, -100, 1f / rows);
        Gpu.CrossEntropyBackward(logits.Gpu, t.Gpu, dlogits.Gpu, rows, classes, -100, 1f / rows);
        Close(dlogits, Fp32, "cross-entropy gradient");
        // in place, as the contract allows
        _cpu.CrossEntropyBackward(logits.Cpu, t.Cpu, logits.Cpu, rows, classes, -100, 1f / rows);
        Gpu.CrossEntropyBackward(logits.Gpu, t.Gpu, logits.Gpu, rows, classes, -100, 1f / rows);
        Close(logits, Fp32, "cross-entropy gradient in place");
    }

    // ---- elementwise, reductions -----------------------------------------------------------------

    [TestCase(1)] [TestCase(7)] [TestCase(1_000_003)]
    public void ElementwiseAndReductions(int n)
    {
        var a = Both(Rand(n)); var b = Both(Rand(n)); var y = Both(new float[n]);
        _cpu.Add(a.Cpu, b.Cpu, y.Cpu); Gpu.Add(a.Gpu, b.Gpu, y.Gpu); Exact(y, "Add");
        _cpu.Axpy(-0.3f, a.Cpu, y.Cpu); Gpu.Axpy(-0.3f, a.Gpu, y.Gpu); Close(y, Fp32, "Axpy");
        _cpu.Scale(y.Cpu, 1.7f); Gpu.Scale(y.Gpu, 1.7f); Close(y, Fp32, "Scale");
        byte[] maskData = Enumerable.Range(0, n).Select(_ => (byte)(_rng.Next(3) == 0 ? 0 : 1)).ToArray();
        var mask = Both(maskData);
        _cpu.ApplyMask(y.Cpu, mask.Cpu); Gpu.ApplyMask(y.Gpu, mask.Gpu); Close(y, Fp32, "ApplyMask");
        float[] gy = TestUtil.Download(y.Gpu);
        for (int i = 0; i < n; i++) if (maskData[i] == 0) Assert.That(BitConverter.SingleToInt32Bits(gy[i]), Is.Zero, $"masked element {i} is not +0");

        var r = Both(new float[1]);
        _cpu.Sum(a.Cpu, r.Cpu); Gpu.Sum(a.Gpu, r.Gpu); Close(r, Fp32, "Sum");
        _cpu.SumOfSquares(a.Cpu, r.Cpu); Gpu.SumOfSquares(a.Gpu, r.Gpu); Close(r, Fp32, "SumOfSquares");
        float first = TestUtil.Download(r.Gpu)[0];
        Gpu.SumOfSquares(a.Gpu, r.Gpu);
        Assert.That(TestUtil.Download(r.Gpu)[0], Is.EqualTo(first), "SumOfSquares is not deterministic");
    }

    // ---- AdamW -----------------------------------------------------------------------------------

    [TestCase(1, false, 0f)] [TestCase(1031, true, 0f)] [TestCase(4096, true, 0.5f)]
    public void AdamW(int n, bool masked, float maxGradNorm)
    {
        var param = Both(Rand(n)); var grad = Both(Rand(n)); var m = Both(Rand(n, 0.1f));
        float[] vs = Rand(n, 0.01f);
        for (int i = 0; i < n; i++) vs[i] = Math.Abs(vs[i]);
        var v = Both(vs);
        (Tensor Cpu, Tensor Gpu)? mask = masked ? Both(Enumerable.Range(0, n).Select(_ => (byte)_rng.Next(2)).ToArray()) : null;
        var normSq = Both(new float[1]);
        _cpu.SumOfSquares(grad.Cpu, normSq.Cpu); Gpu.SumOfSquares(grad.Gpu, normSq.Gpu);
        var p = new AdamWParameters(1e-3f, 0.9f, 0.999f, 1e-6f, 0.01f, 7, maxGradNorm);
        _cpu.AdamW(param.Cpu, grad.Cpu, m.Cpu, v.Cpu, mask?.Cpu, normSq.Cpu, p);
        Gpu.AdamW(param.Gpu, grad.Gpu, m.Gpu, v.Gpu, mask?.Gpu, normSq.Gpu, p);
        Close(param, Fp32, "AdamW param"); Close(m, Fp32, "AdamW m"); Close(v, Fp32, "AdamW v");
        // Whether clipping rewrites grad is the backend's choice; where it does not clip, only the mask may touch it.
        if (maxGradNorm <= 0f) Exact(grad, "AdamW grad");
        if (mask is { } mk)
        {
            byte[] maskHost = new byte[n];
            Gpu.CopyToHost<byte>(mk.Gpu, maskHost);
            float[][] gpuState = [TestUtil.Download(param.Gpu), TestUtil.Download(grad.Gpu), TestUtil.Download(m.Gpu), TestUtil.Download(v.Gpu)];
            for (int i = 0; i < n; i++)
                if (maskHost[i] == 0)
                    foreach (float[] state in gpuState)
                        Assert.That(BitConverter.SingleToInt32Bits(state[i]), Is.Zero, $"masked element {i} is not +0");
        }
    }
}
