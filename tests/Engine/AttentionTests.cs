using NativeSparsity.Engine.Backends.Cpu;
using NUnit.Framework;

namespace NativeSparsity.Tests.Engine;

public class AttentionTests
{
    // ---- split / merge heads -------------------------------------------------------------------

    /// <summary>Index of (b, h, s, d) in a [batch, heads, seq, headDim] tensor.</summary>
    private static long HeadIndex(int b, int h, int s, int d, int heads, int seq, int headDim) =>
        (((long)b * heads + h) * seq + s) * headDim + d;

    /// <summary>Index of (b, s, which, h, d) in a [batch, seq, 3*heads*headDim] fused QKV tensor.</summary>
    private static long QkvIndex(int b, int s, int which, int h, int d, int seq, int heads, int headDim) =>
        ((long)b * seq + s) * 3 * heads * headDim + (long)which * heads * headDim + h * headDim + d;

    [TestCase(1, 1, 1, 1)]
    [TestCase(1, 7, 1, 3)]
    [TestCase(2, 7, 3, 5)]
    [TestCase(3, 1, 4, 3)]
    [TestCase(2, 13, 12, 64)]
    public void SplitQkvHeadsMatchesReferenceAndBackwardInvertsIt(int batch, int seq, int heads, int headDim)
    {
        var rng = new System.Random(TestUtil.FreshSeed());
        using var cpu = new CpuBackend();
        int n = batch * seq * heads * headDim;
        float[] qkvHost = TestUtil.RandomFloats(rng, 3 * n);
        var qkv = TestUtil.Upload(cpu, qkvHost);
        var q = TestUtil.Upload(cpu, CentralDifferences.Nans(n));
        var k = TestUtil.Upload(cpu, CentralDifferences.Nans(n));
        var v = TestUtil.Upload(cpu, CentralDifferences.Nans(n));
        cpu.SplitQkvHeads(qkv, q, k, v, batch, seq, heads, headDim);

        var outs = new[] { TestUtil.Download(q), TestUtil.Download(k), TestUtil.Download(v) };
        for (int which = 0; which < 3; which++)
            for (int b = 0; b < batch; b++)
                for (int h = 0; h < heads; h++)
                    for (int s = 0; s < seq; s++)
                        for (int d = 0; d < headDim; d++)
                        {
                            float expected = qkvHost[QkvIndex(b, s, which, h, d, seq, heads, headDim)];
                            float actual = outs[which][HeadIndex(b, h, s, d, heads, seq, headDim)];
                            if (actual != expected)
                                Assert.Fail($"qkv part {which} at b{b} h{h} s{s} d{d}: {actual}, expected {expected}");
                        }

        // Round trip: the backward of the split puts every element back where it came from.
        var back = TestUtil.Upload(cpu, CentralDifferences.Nans(3 * n));
        cpu.SplitQkvHeadsBackward(q, k, v, back, batch, seq, heads, headDim);
        Bitwise.AssertEqual(TestUtil.Download(back), qkvHost, "split then backward (must be the identity)");
    }

    [TestCase(1, 1, 1, 1)]
    [TestCase(2, 7, 3, 5)]
    [TestCase(1, 5, 2, 3)]
    public void SplitQkvHeadsBackwardMatchesReferenceAndFiniteDifferences(int batch, int seq, int heads, int headDim)
    {
        var rng = new System.Random(TestUtil.FreshSeed());
        using var cpu = new CpuBackend();
        int n = batch * seq * heads * headDim;
        // L(qkv) = sum over parts of <part(qkv), r_part>; dL/dqkv is the r's scattered back.
        float[][] r = { TestUtil.RandomFloats(rng, n), TestUtil.RandomFloats(rng, n), TestUtil.RandomFloats(rng, n) };
        var dqkv = TestUtil.Upload(cpu, CentralDifferences.Nans(3 * n));
        cpu.SplitQkvHeadsBackward(TestUtil.Upload(cpu, r[0]), TestUtil.Upload(cpu, r[1]), TestUtil.Upload(cpu, r[2]),
                                  dqkv, batch, seq, heads, headDim);
        float[] grad = TestUtil.Download(dqkv);

        var analytic = new double[3 * n];
        for (int which = 0; which < 3; which++)
            for (int b = 0; b < batch; b++)
                for (int h = 0; h < heads; h++)
                    for (int s = 0; s < seq; s++)
                        for (int d = 0; d < headDim; d++)
                            analytic[QkvIndex(b, s, which, h, d, seq, heads, headDim)] =
                                r[which][HeadIndex(b, h, s, d, heads, seq, headDim)];
        TestUtil.AssertClose(grad, analytic, 0, 0, "dqkv vs analytic");

        double Loss(double[] x)
        {
            double sum = 0;
            for (int which = 0; which < 3; which++)
                for (int b = 0; b < batch; b++)
                    for (int h = 0; h < heads; h++)
                        for (int s = 0; s < seq; s++)
                            for (int d = 0; d < headDim; d++)
                                sum += x[QkvIndex(b, s, which, h, d, seq, heads, headDim)]
                                       * r[which][HeadIndex(b, h, s, d, heads, seq, headDim)];
            return sum;
        }
        var point = Array.ConvertAll(TestUtil.RandomFloats(rng, 3 * n), f => (double)f);
        TestUtil.AssertClose(grad, CentralDifferences.Gradient(Loss, point), 1e-6, 1e-7, "dqkv vs finite differences");
    }

    [TestCase(1, 1, 1, 1)]
    [TestCase(1, 7, 1, 3)]
    [TestCase(2, 7, 3, 5)]
    [TestCase(3, 9, 4, 17)]
    public void MergeHeadsMatchesReferenceAndBackwardIsInversePermutation(int batch, int seq, int heads, int headDim)
    {
        var rng = new System.Random(TestUtil.FreshSeed());
        using var cpu = new CpuBackend();
        int n = batch * seq * heads * headDim;
        float[] xHost = TestUtil.RandomFloats(rng, n);
        var y = TestUtil.Upload(cpu, CentralDifferences.Nans(n));
        cpu.MergeHeads(TestUtil.Upload(cpu, xHost), y, batch, seq, heads, headDim);
        float[] yHost = TestUtil.Download(y);

        var expected = new double[n];
        for (int b = 0; b < batch; b++)
            for (int h = 0; h < heads; h++)
                for (int s = 0; s < seq; s++)
                    for (int d = 0; d < headDim; d++)
                        expected[((long)b * seq + s) * heads * headDim + h * headDim + d] =
                            xHost[HeadIndex(b, h, s, d, heads, seq, headDim)];
        TestUtil.AssertClose(yHost, expected, 0, 0, "merged heads");

        var back = TestUtil.Upload(cpu, CentralDifferences.Nans(n));
        cpu.MergeHeadsBackward(y, back, batch, seq, heads, headDim);
        Bitwise.AssertEqual(TestUtil.Download(back), xHost, "merge then backward (must be the identity)");

        // Gradient of L(x) = <merge(x), r>, checked by finite differences of the plain reference.
        float[] r = TestUtil.RandomFloats(rng, n);
        var dx = TestUtil.Upload(cpu, CentralDifferences.Nans(n));
        cpu.MergeHeadsBackward(TestUtil.Upload(cpu, r), dx, batch, seq, heads, headDim);
        double Loss(double[] x)
        {
            double sum = 0;
            for (int b = 0; b < batch; b++)
                for (int h = 0; h < heads; h++)
                    for (int s = 0; s < seq; s++)
                        for (int d = 0; d < headDim; d++)
                            sum += x[HeadIndex(b, h, s, d, heads, seq, headDim)]
                                   * r[((long)b * seq + s) * heads * headDim + h * headDim + d];
            return sum;
        }
        var point = Array.ConvertAll(xHost, f => (double)f);
        TestUtil.AssertClose(TestUtil.Download(dx), CentralDifferences.Gradient(Loss, point), 1e-6, 1e-7, "dx vs finite differences");
    }

    // ---- masked softmax ------------------------------------------------------------------------

    /// <summary>Plain float64 softmax over keys of scale * scores + keyMask.</summary>
    private static double[] SoftmaxReference(double[] scores, float[] keyMask, double scale, int batch, int heads, int seqQ, int seqK)
    {
        var probs = new double[scores.Length];
        for (int row = 0; row < batch * heads * seqQ; row++)
        {
            int b = row / (heads * seqQ);
            double max = double.NegativeInfinity;
            for (int j = 0; j < seqK; j++)
                max = Math.Max(max, scale * scores[row * seqK + j] + keyMask[b * seqK + j]);
            double sum = 0;
            for (int j = 0; j < seqK; j++)
                sum += probs[row * seqK + j] = Math.Exp(scale * scores[row * seqK + j] + keyMask[b * seqK + j] - max);
            for (int j = 0; j < seqK; j++) probs[row * seqK + j] /= sum;
        }
        return probs;
    }

    /// <summary>Key mask with random padding at the end of each sequence; batch 0 keeps its first key.</summary>
    private static float[] PaddingMask(System.Random rng, int batch, int seqK, bool maskWholeLastBatch)
    {
        var mask = new float[batch * seqK];
        for (int b = 0; b < batch; b++)
        {
            int valid = maskWholeLastBatch && b == batch - 1 && batch > 1 ? 0 : rng.Next(1, seqK + 1);
            for (int j = valid; j < seqK; j++) mask[b * seqK + j] = -10000f;
        }
        return mask;
    }

    [TestCase(1, 1, 1, 1)]
    [TestCase(1, 1, 7, 7)]
    [TestCase(2, 3, 7, 7)]
    [TestCase(3, 2, 5, 13)]
    [TestCase(2, 12, 33, 33)]
    [TestCase(1, 2, 3, 1001)]
    public void SoftmaxForwardMatchesReferenceHidesMaskedKeysAndSumsToOne(int batch, int heads, int seqQ, int seqK)
    {
        var rng = new System.Random(TestUtil.FreshSeed());
        using var cpu = new CpuBackend();
        int n = batch * heads * seqQ * seqK;
        float scale = 1f / MathF.Sqrt(7);
        float[] scores = TestUtil.RandomNormals(rng, n, 4f);
        float[] mask = PaddingMask(rng, batch, seqK, maskWholeLastBatch: true);
        var probs = TestUtil.Upload(cpu, CentralDifferences.Nans(n));
        cpu.AttentionSoftmaxForward(TestUtil.Upload(cpu, scores), TestUtil.Upload(cpu, mask), probs, scale, batch, heads, seqQ, seqK);
        float[] p = TestUtil.Download(probs);

        double[] expected = SoftmaxReference(Array.ConvertAll(scores, f => (double)f), mask, scale, batch, heads, seqQ, seqK);
        TestUtil.AssertClose(p, expected, 2e-5, 1e-7, "probs");

        bool wholeBatchMasked = batch > 1;
        for (int row = 0; row < batch * heads * seqQ; row++)
        {
            int b = row / (heads * seqQ);
            double sum = 0;
            for (int j = 0; j < seqK; j++)
            {
                float pj = p[row * seqK + j];
                Assert.That(float.IsFinite(pj) && pj >= 0, $"row {row} key {j}: probability {pj}");
                sum += pj;
                bool fullyMaskedRow = wholeBatchMasked && b == batch - 1;
                if (mask[b * seqK + j] != 0 && !fullyMaskedRow)
                    Assert.That(pj, Is.LessThan(1e-30), $"row {row}: masked key {j} gets probability {pj}");
            }
            Assert.That(sum, Is.EqualTo(1.0).Within(1e-5), $"row {row} sums to {sum}");
        }
    }

    [Test]
    public void SoftmaxForwardInPlaceEqualsOutOfPlace()
    {
        var rng = new System.Random(TestUtil.FreshSeed());
        using var cpu = new CpuBackend();
        const int batch = 2, heads = 3, seqQ = 7, seqK = 19;
        int n = batch * heads * seqQ * seqK;
        float[] scores = TestUtil.RandomNormals(rng, n, 3f);
        var mask = TestUtil.Upload(cpu, PaddingMask(rng, batch, seqK, false));
        var separate = TestUtil.Upload(cpu, CentralDifferences.Nans(n));
        cpu.AttentionSoftmaxForward(TestUtil.Upload(cpu, scores), mask, separate, 0.125f, batch, heads, seqQ, seqK);
        var inPlace = TestUtil.Upload(cpu, scores);
        cpu.AttentionSoftmaxForward(inPlace, mask, inPlace, 0.125f, batch, heads, seqQ, seqK);
        Bitwise.AssertEqual(TestUtil.Download(inPlace), TestUtil.Download(separate), "in-place probs");
    }

    [TestCase(1, 1, 1, 1)]
    [TestCase(1, 1, 7, 7)]
    [TestCase(2, 3, 5, 13)]
    [TestCase(1, 2, 3, 33)]
    public void SoftmaxBackwardMatchesAnalyticReferenceAndFiniteDifferences(int batch, int heads, int seqQ, int seqK)
    {
        var rng = new System.Random(TestUtil.FreshSeed());
        using var cpu = new CpuBackend();
        int n = batch * heads * seqQ * seqK, rows = batch * heads * seqQ;
        float scale = 0.35f;
        float[] scores = TestUtil.RandomNormals(rng, n, 2f);
        // Mask some keys with a moderate value so the masked entries still carry gradient to check.
        var mask = new float[batch * seqK];
        for (int i = 0; i < mask.Length; i++) mask[i] = rng.Next(3) == 0 ? -2f : 0f;
        float[] r = TestUtil.RandomFloats(rng, n);

        var probs = TestUtil.Upload(cpu, CentralDifferences.Nans(n));
        cpu.AttentionSoftmaxForward(TestUtil.Upload(cpu, scores), TestUtil.Upload(cpu, mask), probs, scale, batch, heads, seqQ, seqK);
        var dscores = TestUtil.Upload(cpu, CentralDifferences.Nans(n));
        cpu.AttentionSoftmaxBackward(probs, TestUtil.Upload(cpu, r), dscores, scale, rows, seqK);
        float[] grad = TestUtil.Download(dscores);

        // Analytic: ds = scale * p * (r - sum_j r_j p_j) with float64 probabilities.
        var scoresD = Array.ConvertAll(scores, f => (double)f);
        double[] p = SoftmaxReference(scoresD, mask, scale, batch, heads, seqQ, seqK);
        var analytic = new double[n];
        for (int row = 0; row < rows; row++)
        {
            double dot = 0;
            for (int j = 0; j < seqK; j++) dot += r[row * seqK + j] * p[row * seqK + j];
            for (int j = 0; j < seqK; j++)
                analytic[row * seqK + j] = scale * p[row * seqK + j] * (r[row * seqK + j] - dot);
        }
        TestUtil.AssertClose(grad, analytic, 1e-4, 1e-6, "dscores vs analytic");

        // L(scores) = <softmax(scale * scores + mask), r>.
        double Loss(double[] s)
        {
            double[] ps = SoftmaxReference(s, mask, scale, batch, heads, seqQ, seqK);
            double sum = 0;
            for (int i = 0; i < n; i++) sum += ps[i] * r[i];
            return sum;
        }
        TestUtil.AssertClose(grad, CentralDifferences.Gradient(Loss, scoresD), 1e-4, 1e-6, "dscores vs finite differences");

        // dscores may alias dprobs.
        var inPlace = TestUtil.Upload(cpu, r);
        cpu.AttentionSoftmaxBackward(probs, inPlace, inPlace, scale, rows, seqK);
        Bitwise.AssertEqual(TestUtil.Download(inPlace), grad, "in-place dscores");
    }

    [Test]
    public void ShortTensorsAreRejectedByName()
    {
        using var cpu = new CpuBackend();
        var small = cpu.Allocate(NativeSparsity.Engine.Tensors.DType.F32, 5);
        var big = cpu.Allocate(NativeSparsity.Engine.Tensors.DType.F32, 100);
        var ex = Assert.Throws<ArgumentException>(() => cpu.MergeHeads(big, small, 1, 2, 2, 3));
        Assert.That(ex!.Message, Does.StartWith("y:"));
        ex = Assert.Throws<ArgumentException>(() => cpu.AttentionSoftmaxForward(big, small, big, 1f, 1, 1, 2, 7));
        Assert.That(ex!.Message, Does.StartWith("keyMask:"));
    }
}
