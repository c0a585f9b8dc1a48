using NativeSparsity.Engine.Backends.Cpu;
using NUnit.Framework;

namespace NativeSparsity.Tests.Engine;

public class EmbeddingTests
{
    private static int[] RandomIds(System.Random rng, int count, int vocab)
    {
        var ids = new int[count];
        for (int i = 0; i < count; i++) ids[i] = rng.Next(vocab);
        return ids;
    }

    [TestCase(1, 1, 1)]
    [TestCase(13, 7, 5)]
    [TestCase(65, 33, 100)]
    [TestCase(300, 768, 512)]
    public void ForwardGathersRowsAndAccumulatesThreeTables(int count, int dim, int vocab)
    {
        var rng = new System.Random(TestUtil.FreshSeed());
        using var cpu = new CpuBackend();
        // Word + position + token-type embeddings, as the BERT embedding layer sums them.
        float[][] tables = { TestUtil.RandomFloats(rng, vocab * dim), TestUtil.RandomFloats(rng, 3 * dim), TestUtil.RandomFloats(rng, 2 * dim) };
        int[][] ids = { RandomIds(rng, count, vocab), RandomIds(rng, count, 3), RandomIds(rng, count, 2) };
        var output = TestUtil.Upload(cpu, CentralDifferences.Nans(count * dim));

        cpu.EmbeddingForward(TestUtil.Upload(cpu, ids[0]), TestUtil.Upload(cpu, tables[0]), output, count, dim, accumulate: false);
        var gathered = new double[count * dim];
        for (int i = 0; i < count; i++)
            for (int c = 0; c < dim; c++) gathered[i * dim + c] = tables[0][ids[0][i] * dim + c];
        TestUtil.AssertClose(TestUtil.Download(output), gathered, 0, 0, "gathered word embeddings");

        for (int t = 1; t < 3; t++)
            cpu.EmbeddingForward(TestUtil.Upload(cpu, ids[t]), TestUtil.Upload(cpu, tables[t]), output, count, dim, accumulate: true);
        var summed = new double[count * dim];
        for (int i = 0; i < count; i++)
            for (int c = 0; c < dim; c++)
                for (int t = 0; t < 3; t++) summed[i * dim + c] += tables[t][ids[t][i] * dim + c];
        TestUtil.AssertClose(TestUtil.Download(output), summed, 1e-6, 1e-6, "summed embeddings");
    }

    [TestCase(1, 1, 1)]
    [TestCase(13, 7, 5)]
    [TestCase(50, 33, 4)]
    [TestCase(200, 100, 300)]
    public void BackwardScatterAddsMatchesReferenceAndFiniteDifferences(int count, int dim, int vocab)
    {
        var rng = new System.Random(TestUtil.FreshSeed());
        using var cpu = new CpuBackend();
        int[] ids = RandomIds(rng, count, vocab);
        float[] dout = TestUtil.RandomFloats(rng, count * dim);
        float[] initial = TestUtil.RandomFloats(rng, vocab * dim);
        var dtable = TestUtil.Upload(cpu, initial);
        cpu.EmbeddingBackward(TestUtil.Upload(cpu, ids), TestUtil.Upload(cpu, dout), dtable, count, dim);
        float[] grad = TestUtil.Download(dtable);

        // The op accumulates into dtable, so the reference starts from its initial contents.
        var expected = Array.ConvertAll(initial, f => (double)f);
        for (int i = 0; i < count; i++)
            for (int c = 0; c < dim; c++) expected[ids[i] * dim + c] += dout[i * dim + c];
        TestUtil.AssertClose(grad, expected, 1e-5, 2e-5, "dtable");

        // L(table) = <forward(table), dout>; its gradient is what the backward added.
        double Loss(double[] table)
        {
            double sum = 0;
            for (int i = 0; i < count; i++)
                for (int c = 0; c < dim; c++) sum += table[ids[i] * dim + c] * dout[i * dim + c];
            return sum;
        }
        if (vocab * dim <= 2000)
        {
            double[] numeric = CentralDifferences.Gradient(Loss, Array.ConvertAll(TestUtil.RandomFloats(rng, vocab * dim), f => (double)f));
            var added = new float[grad.Length];
            for (int i = 0; i < added.Length; i++) added[i] = grad[i] - initial[i];
            TestUtil.AssertClose(added, numeric, 1e-5, 2e-5, "dtable increment vs finite differences");
        }
    }

    [Test]
    public void RepeatedIdsAccumulate()
    {
        var rng = new System.Random(TestUtil.FreshSeed());
        using var cpu = new CpuBackend();
        const int count = 9, dim = 19, vocab = 4;
        var ids = new int[count];
        Array.Fill(ids, 2);
        float[] dout = TestUtil.RandomFloats(rng, count * dim);
        var dtable = cpu.Allocate(NativeSparsity.Engine.Tensors.DType.F32, vocab, dim);
        cpu.EmbeddingBackward(TestUtil.Upload(cpu, ids), TestUtil.Upload(cpu, dout), dtable, count, dim);
        float[] grad = TestUtil.Download(dtable);
        var expected = new double[vocab * dim];
        for (int i = 0; i < count; i++)
            for (int c = 0; c < dim; c++) expected[2 * dim + c] += dout[i * dim + c];
        TestUtil.AssertClose(grad, expected, 1e-5, 2e-5, "dtable with one repeated id");
        for (int c = 0; c < dim; c++)
            Assert.That(grad[c] == 0 && grad[dim + c] == 0 && grad[3 * dim + c] == 0, "rows never looked up must stay zero");
    }

    [Test]
    public void BackwardIsBitwiseIdenticalForOneAndManyThreads()
    {
        var rng = new System.Random(TestUtil.FreshSeed());
        const int count = 3000, dim = 200, vocab = 37;
        int[] ids = RandomIds(rng, count, vocab);
        float[] dout = TestUtil.RandomNormals(rng, count * dim);
        float[] initial = TestUtil.RandomNormals(rng, vocab * dim);
        float[] Run(int threads)
        {
            using var cpu = new CpuBackend(threads);
            var dtable = TestUtil.Upload(cpu, initial);
            cpu.EmbeddingBackward(TestUtil.Upload(cpu, ids), TestUtil.Upload(cpu, dout), dtable, count, dim);
            return TestUtil.Download(dtable);
        }
        float[] one = Run(1), many = Run(Math.Max(8, Environment.ProcessorCount));
        Bitwise.AssertEqual(many, one, "dtable with many threads vs one");
    }

    [TestCase(-1)]
    [TestCase(11)]
    [TestCase(int.MaxValue)]
    public void OutOfRangeIdThrowsNamingPositionAndValue(int badId)
    {
        using var cpu = new CpuBackend();
        const int dim = 3, vocab = 11;
        var ids = TestUtil.Upload(cpu, new[] { 0, 10, badId, 4 });
        var table = cpu.Allocate(NativeSparsity.Engine.Tensors.DType.F32, vocab, dim);
        var output = cpu.Allocate(NativeSparsity.Engine.Tensors.DType.F32, 4, dim);
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => cpu.EmbeddingForward(ids, table, output, 4, dim, false));
        Assert.That(ex!.Message, Does.Contain($"ids[2] = {badId}"));
        ex = Assert.Throws<ArgumentOutOfRangeException>(() => cpu.EmbeddingBackward(ids, output, table, 4, dim));
        Assert.That(ex!.Message, Does.Contain($"ids[2] = {badId}"));
        Bitwise.AssertEqual(TestUtil.Download(table), new float[vocab * dim], "dtable after a rejected backward");
    }
}
